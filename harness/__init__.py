"""timetrial's engine, in three layers; each imports only the layers below it (tests/test_layers.py):

harness.core      the contract and the runner
harness.study     sweeps, tuning, scoring and boards
harness.commands  commands and reports"""
