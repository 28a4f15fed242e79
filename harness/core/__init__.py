"""The contract and the runner: the workload and submission API (spec), the search space, seeds,
presets, targets, provenance, results and checkpoints, and `runner.run_trial`, which trains one trial.

The lowest layer: it imports nothing else from harness (tests/test_layers.py). `compat/` holds the
light `algoperf` shims that submission.py puts on sys.path."""
