"""NAdamW as an optax transformation, in the form of AlgoPerf's JAX baseline: `scale_by_nadam` chained
with decoupled weight decay and the learning rate. JAX-only, as `optax_steps`: only JAX submissions import it.

The update is the PyTorch `nadamw` one, with Adam's bias corrections 1 - beta^t (t counted from 1):
    m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
    p <- p - lr * ((beta1 m + (1 - beta1) g) / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps) + wd p)
(PyTorch multiplies p by 1 - lr wd before adding the step; the step does not depend on p, so the two
orders give the same p.) The PyTorch twin has no epsilon hyperparameter: its eps is EPSILON.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

EPSILON = 1e-8


class ScaleByNadamState(NamedTuple):
    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def scale_by_nadam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    def init_fn(params):
        zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
        return ScaleByNadamState(count=jnp.zeros([], jnp.int32), mu=zeros(), nu=zeros())

    def update_fn(grads, state, params=None):
        count = state.count + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1.0 - b2) * g * g, state.nu, grads)
        mu_correction, nu_correction = 1.0 - b1 ** count, 1.0 - b2 ** count

        def direction(m, v, g):
            nesterov_m = b1 * m + (1.0 - b1) * g  # the look-ahead: the next step's momentum at this gradient
            return nesterov_m / mu_correction / (jnp.sqrt(v / nu_correction) + eps)

        return jax.tree.map(direction, mu, nu, grads), ScaleByNadamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def nadamw(learning_rate, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    return optax.chain(scale_by_nadam(b1, b2, eps), optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


def nadamw_from_hyperparameters(hyperparameters) -> optax.GradientTransformation:
    """`nadamw` at the benchmark's names (`one_minus_beta1`, ...), its learning rate injectable
    (`optax.inject_hyperparams`): the submissions set it each step from their schedule."""
    return optax.inject_hyperparams(nadamw)(
        learning_rate=hyperparameters["learning_rate"], b1=1.0 - hyperparameters["one_minus_beta1"],
        b2=hyperparameters["beta2"], eps=EPSILON, weight_decay=hyperparameters["weight_decay"])
