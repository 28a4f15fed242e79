"""Light stand-in for the `algoperf` package, used only when the real one is not installed.

The real package imports jax and tensorflow at import time; AlgoPerf PyTorch submissions need only
`algoperf.spec` and `algoperf.pytorch_utils.pytorch_setup`, which map onto timetrial's own contract.
"""
