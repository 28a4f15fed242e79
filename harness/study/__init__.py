"""Sweeps, tuning, scoring and boards: the hydra config, launchers, sweeps, tuning rulesets, scoring,
the leaderboard, target calibration, paper reproductions and trial status.

Imports harness.core only, never harness.commands (tests/test_layers.py)."""
