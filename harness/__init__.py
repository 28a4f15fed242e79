"""timetrial's engine, in three layers; each imports only the layers below it (tests/test_layers.py):

harness.core      the contract and the runner
harness.study     sweeps, tuning, scoring and boards
harness.commands  commands and reports

harness/schedules.py stays at the top only as a re-export for the three calibrated baselines."""
