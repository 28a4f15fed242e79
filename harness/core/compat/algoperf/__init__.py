"""Light stand-in for the `algoperf` package, used only when the real one is not installed.

The real package imports jax, flax and tensorflow at import time; AlgoPerf's submissions need only
`algoperf.spec`, `pytorch_utils.pytorch_setup` (PyTorch) or `jax_sharding_utils` (JAX), `random_utils`
and `param_utils`, which map onto timetrial's own contract (docs/algoperf.md).
"""
