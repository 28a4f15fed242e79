"""`algoperf.jax_utils` without flax: AlgoPerf's dropout layer as a plain callable.

AlgoPerf's module holds two flax pieces for its flax models: `Dropout`, a `flax.linen.Module` whose rate
can be given at call time (and may be traced, so a new rate does not recompile), and
`print_jax_model_summary`, flax's table of a module. timetrial's JAX models are parameter dicts, not flax
modules (docs/jax.md), and flax is not installed; `Dropout` here keeps the fields and the call of
AlgoPerf's, with the key passed in (`rng=`) since there are no flax RNG collections.
"""

import dataclasses
from typing import Any, Sequence

from workloads.jax_common import dropout


@dataclasses.dataclass(frozen=True)
class Dropout:
    """`Dropout(rate)(inputs, deterministic=False, rng=key)`: each element zeroed with probability `rate`, the
    rest scaled by 1 / (1 - rate); `deterministic=True` returns `inputs`. `rate` given at call time replaces
    the field's; `deterministic` must be given exactly once, as a field or at call time (flax's rule).
    `legacy=True` returns `inputs` at a rate of 0 without drawing a mask (a Python test: a static rate only)."""

    rate: float | None = None
    broadcast_dims: Sequence[int] = ()
    deterministic: bool | None = None
    rng_collection: str = "dropout"
    legacy: bool = False

    def __call__(self, inputs: Any, deterministic: bool | None = None, rate: Any = None, rng: Any = None) -> Any:
        if (self.deterministic is None) == (deterministic is None):
            raise ValueError("Dropout: give deterministic either as a field or at call time, exactly once "
                             f"(field {self.deterministic}, call {deterministic})")
        rate = self.rate if rate is None else rate
        if (self.deterministic if deterministic is None else deterministic) or (self.legacy and rate == 0.0):
            return inputs
        if rng is None:
            raise ValueError(f"Dropout: pass rng= (a jax.random key); timetrial's shim has no flax "
                             f"{self.rng_collection!r} RNG collection to draw it from")
        return dropout(inputs, rate, rng, self.broadcast_dims)


def __getattr__(name: str) -> Any:
    if name == "print_jax_model_summary":
        raise AttributeError("algoperf.jax_utils.print_jax_model_summary tabulates a flax module; timetrial's JAX "
                             "models are parameter dicts: print jax.tree.map(jnp.shape, params) instead")
    raise AttributeError(f"module 'algoperf.jax_utils' has no attribute {name!r}; it has Dropout")
