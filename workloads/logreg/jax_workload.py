"""The logistic-regression suite in JAX (`framework=jax`, installed by `pip install -e '.[jax]'`).

Same data, batch stream, objective, f* and evaluation as the PyTorch classes, so a JAX submission and
a PyTorch one race to the same line. The model is a plain parameter dict {"weight": (outputs,
features), "bias": (outputs,)}: a linear model needs no module library (flax). `model_fn` and
`loss_fn` are pure, so submissions can `jax.jit` and differentiate through them.

AlgoPerf's `loss_fn` cannot see the parameters, yet the L2 term is part of the objective every
submission minimises: `model_fn` returns `Logits(values, penalty)` and `loss_fn` adds the penalty
(the PyTorch classes keep it on the workload instead, which a traced function must not do).
The batch stream and the framework hooks are the ones every JAX workload shares (workloads/jax_common.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as err:
    raise ImportError("framework=jax needs the jax extra: .venv/bin/pip install -e '.[jax]'") from err

from harness.core.spec import Workload
from workloads.jax_common import JaxWorkload, jax_class, loss_outputs


class Logits(NamedTuple):
    """What the JAX logistic `model_fn` returns: the logits and this forward pass's L2 penalty."""

    values: jax.Array
    penalty: jax.Array


class JaxLogisticRegression(JaxWorkload):
    """Mixin over a PyTorch logistic workload class: the JAX model and loss."""

    def init_model_fn(self, rng: int) -> tuple[dict[str, jax.Array], None]:
        outputs = 1 if self.n_classes == 2 else self.n_classes
        params = {"weight": jnp.zeros((outputs, self.n_features), jnp.float32),
                  "bias": jnp.zeros((outputs,), jnp.float32)}
        self._param_shapes = {name: value.shape for name, value in params.items()}
        return params, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        logits = augmented_and_preprocessed_input_batch["inputs"] @ params["weight"].T + params["bias"]
        penalty = 0.5 * self.l2 * jnp.sum(params["weight"] ** 2)
        return Logits(logits[:, 0] if self.n_classes == 2 else logits, penalty), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        logits, penalty = logits_batch
        if self.n_classes == 2:
            targets = label_batch * (1 - label_smoothing) + 0.5 * label_smoothing
            per_example = optax.sigmoid_binary_cross_entropy(logits, targets)
        else:
            one_hot = jax.nn.one_hot(label_batch, self.n_classes, dtype=logits.dtype)
            per_example = optax.softmax_cross_entropy(logits, optax.smooth_labels(one_hot, label_smoothing))
        return loss_outputs(per_example + penalty, mask_batch)

    def linear_weights(self, model: dict[str, jax.Array]) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(model["weight"], np.float64), np.asarray(model["bias"], np.float64)


def jax_implementation(cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch logistic workload class) with the JAX model, loss and hooks."""
    return jax_class(JaxLogisticRegression, cls)
