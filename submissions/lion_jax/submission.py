"""Lion and Lion-K in JAX through AlgoPerf's functional API: the JAX twin of the PyTorch `lion`
submission, with its warm-up + cosine schedule, hyperparameter names and both kappas.

    c = beta1 m + (1 - beta1) g;   p <- p - lr (grad K(c) + wd p);   m <- beta2 m + (1 - beta2) g
kappa "l1" (grad K = sign, Lion) is `optax.lion`, exactly this chain (scale_by_lion, add_decayed_weights,
scale by -lr: the decoupled weight decay is multiplied by the scheduled learning rate, as in the twin).
optax ships only the sign direction (scale_by_lion's modes are hard sign, tanh and clipped-linear), so
kappa "l2" (grad K = c / ||c||_2 per parameter tensor) is the same chain around `scale_by_lion_l2`.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from harness.core.spec import ForwardPassMode
from optimlib import schedules


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


@functools.lru_cache(maxsize=8)
def _train_step(workload, hyperparameter_items: tuple):
    """The jitted step for one workload and hyperparameter point, compiled on first use."""
    optimizer = _optimizer(dict(hyperparameter_items))

    def step(params, opt_state, model_state, batch, learning_rate):
        def loss_of(p):
            logits, new_model_state = workload.model_fn(p, batch, model_state, ForwardPassMode.TRAIN, None, True)
            out = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
            return out["summed"] / out["n_valid_examples"], new_model_state

        (loss, new_model_state), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        opt_state.hyperparams["learning_rate"] = learning_rate
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, new_model_state, loss

    return jax.jit(step)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"opt_state": _optimizer(hyperparameters).init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    learning_rate = hyperparameters.learning_rate * schedules.warmup_cosine(
        global_step, workload.step_hint, hyperparameters.warmup_factor)
    params, opt_state, model_state, loss = _train_step(workload, tuple(sorted(hyperparameters.items())))(
        current_param_container, optimizer_state["opt_state"], model_state, batch, learning_rate)
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
    return {"opt_state": opt_state}, params, model_state
