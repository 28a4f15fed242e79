"""Commands and reports: the `timetrial` command line, reports, `submit` comparisons, `describe`, and
the new-submission templates.

The top layer: it may import harness.study and harness.core (tests/test_layers.py)."""
