"""Lion and Lion-K in JAX through AlgoPerf's functional API: the JAX twin of the PyTorch `lion`
submission, with its warm-up + cosine schedule, hyperparameter names and both kappas.

    c = beta1 m + (1 - beta1) g;   p <- p - lr (grad K(c) + wd p);   m <- beta2 m + (1 - beta2) g
kappa "l1" (grad K = sign, Lion) is `optax.lion`, exactly this chain (scale_by_lion, add_decayed_weights,
scale by -lr: the decoupled weight decay is multiplied by the scheduled learning rate, as in the twin).
optax ships only the sign direction (scale_by_lion's modes are hard sign, tanh and clipped-linear), so
kappa "l2" (grad K = c / ||c||_2 per parameter tensor) is the same chain around `scale_by_lion_l2`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps


class ScaleByLionL2State(NamedTuple):
    mu: optax.Updates


def scale_by_lion_l2(b1: float, b2: float) -> optax.GradientTransformation:
    """scale_by_lion with the normalised direction c / max(||c||_2, tiny) of each tensor for sign(c)."""
    def update_fn(grads, state, params=None):
        def direction(g, m):
            c = b1 * m + (1.0 - b1) * g
            return c / jnp.maximum(jnp.linalg.norm(c), jnp.finfo(c.dtype).tiny)

        mu = jax.tree.map(lambda g, m: b2 * m + (1.0 - b2) * g, grads, state.mu)
        return jax.tree.map(direction, grads, state.mu), ScaleByLionL2State(mu=mu)

    return optax.GradientTransformation(lambda params: ScaleByLionL2State(mu=jax.tree.map(jnp.zeros_like, params)),
                                        update_fn)


def lion_l2(learning_rate, b1, b2, weight_decay) -> optax.GradientTransformation:
    return optax.chain(scale_by_lion_l2(b1, b2), optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


KAPPA_OPTIMIZERS = {"l1": optax.lion, "l2": lion_l2}


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    if hyperparameters["kappa"] not in KAPPA_OPTIMIZERS:
        raise ValueError(f"lion_jax kappa={hyperparameters['kappa']!r}; valid: {sorted(KAPPA_OPTIMIZERS)}")
    return optax.inject_hyperparams(KAPPA_OPTIMIZERS[hyperparameters["kappa"]])(
        learning_rate=hyperparameters["learning_rate"], b1=hyperparameters["beta1"], b2=hyperparameters["beta2"],
        weight_decay=hyperparameters["weight_decay"])




init_optimizer_state, update_params = optax_steps.warmup_cosine_functions(_optimizer, ForwardPassMode.TRAIN)
