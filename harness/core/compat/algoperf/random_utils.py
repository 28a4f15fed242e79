"""`algoperf.random_utils`: AlgoPerf's seed functions, jax.random's for a JAX key and AlgoPerf's NumPy scheme
(harness/core/prng.py) otherwise. AlgoPerf picks by its --framework flag; the seed tells the same here, since
a JAX trial hands its submission uint32 keys and a PyTorch trial int32 pairs. `PRNGKey(int)` has no seed to
tell by and gives the NumPy form: AlgoPerf's runner calls it, its submissions split the keys they are given."""

from typing import Any

from harness.core.prng import is_jax_key, numpy_fold_in, numpy_split
from harness.core.prng import numpy_key as PRNGKey  # noqa: F401,N812  (re-exported for AlgoPerf submissions)


def fold_in(seed: Any, data: int) -> Any:
    if is_jax_key(seed):
        import jax  # a JAX key came from a JAX trial, so jax is installed

        return jax.random.fold_in(seed, data)
    return numpy_fold_in(seed, data)


def split(seed: Any, num: int = 2) -> Any:
    if is_jax_key(seed):
        import jax

        return jax.random.split(seed, num)
    return numpy_split(seed, num)
