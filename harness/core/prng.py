"""The `rng` values a trial hands its submission, in AlgoPerf's forms, and AlgoPerf's NumPy seed functions
(`algoperf.random_utils` under PyTorch) for the compatibility shim.

Each call of `init_optimizer_state`, `data_selection`, `update_params` and `prepare_for_eval` gets its own
seed, a function of (trial seed, step, which call) only, so a resumed trial gets the same ones without
saving generator state. The form is AlgoPerf's: under PyTorch an int32 pair in [0, 2**31 - 1) (what its
NumPy `random_utils.split` returns), under JAX a raw uint32[2] threefry key that `jax.random` takes.
The values are not AlgoPerf's: its per-step `fold_in` + `split` through `np.random.RandomState` costs
~0.5 ms a step here (two generator seedings), which the clock would count; a BLAKE2 hash costs ~5 us.
The model's initialisation and the data stream keep timetrial's integer seed: they are the workload's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

#: `RandomState(seed)` takes seeds in [0, 2**31 - 1]; `randint` returns signed int32
MAX_INT32 = 2**31 - 1


def _unsigned(seed: Any) -> Any:
    if isinstance(seed, (list, np.ndarray)):
        return [int(s) % MAX_INT32 for s in np.asarray(seed).ravel().tolist()]
    return int(seed) % MAX_INT32


def numpy_split(seed: Any, num: int = 2) -> np.ndarray:
    """`num` new seeds (int32 pairs) from `seed`, as AlgoPerf's `random_utils.split` under PyTorch."""
    return np.random.RandomState(seed=_unsigned(seed)).randint(0, MAX_INT32, dtype=np.int32, size=[num, 2])


def numpy_fold_in(seed: Any, data: int) -> list:
    """A seed for `data` (a step number) derived from `seed`, as AlgoPerf's `random_utils.fold_in`."""
    return [np.random.RandomState(seed=_unsigned(seed)).randint(0, MAX_INT32, dtype=np.int32), data]


def numpy_key(seed: int) -> np.ndarray:
    return numpy_split(seed, 2)[0]


def is_jax_key(seed: Any) -> bool:
    """Whether `seed` is a JAX trial's key: a raw uint32 threefry key (what TrialSeeds hands JAX submissions,
    and jax.random.PRNGKey returns) or a typed `jax.random.key`; AlgoPerf's NumPy seeds are int32."""
    dtype = getattr(seed, "dtype", None)
    return dtype is not None and (str(dtype).startswith("key<") or dtype == np.uint32)


@dataclasses.dataclass(frozen=True)
class StepSeeds:
    data_selection: Any
    update_params: Any
    prepare_for_eval: Any


class TrialSeeds:
    """Every `rng` of one trial, derived from its seed in the form of the trial's framework."""

    def __init__(self, seed: int, framework: str = "pytorch") -> None:
        self.seed = seed
        self.framework = framework
        self.optimizer_init = self._derive(-1, 1)[0]

    def _derive(self, step: int, count: int) -> np.ndarray:
        digest = hashlib.blake2b(f"{self.seed}:{step}".encode(), digest_size=8 * count).digest()
        words = np.frombuffer(digest, dtype=np.uint32).reshape(count, 2)
        if self.framework == "jax":
            return words.copy()
        return (words >> 1).astype(np.int32)  # AlgoPerf's NumPy seeds are non-negative int32

    def at_step(self, step: int) -> StepSeeds:
        return StepSeeds(*self._derive(step, 3))
