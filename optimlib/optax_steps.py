"""What the JAX submissions share: the mean training loss of a batch through AlgoPerf's `model_fn` and
`loss_fn`, and one jitted optax step around an `optax.inject_hyperparams` optimizer whose scheduled
values (learning rates) are set each step.

JAX-only: it imports jax and optax, and only JAX submissions import it (the rest of optimlib is torch).
Like the rest of optimlib it imports nothing of the harness, so the caller passes the forward mode
(`spec.ForwardPassMode.TRAIN`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import optax

from optimlib import schedules


def mean_loss(workload, params, model_state, batch, mode, rng=None, hyperparameters: Mapping[str, Any] | None = None):
    """(mean loss, new model state) of `batch`; `dropout_rate` and `label_smoothing` are the point's, when
    it sets them (as the PyTorch submissions read them)."""
    hyperparameters = hyperparameters or {}
    logits, new_model_state = workload.model_fn(params, batch, model_state, mode, rng, True,
                                                hyperparameters.get("dropout_rate"))
    out = workload.loss_fn(batch["targets"], logits, batch.get("weights"), hyperparameters.get("label_smoothing", 0.0))
    return out["summed"] / out["n_valid_examples"], new_model_state


@functools.lru_cache(maxsize=16)
def train_step(workload, make_optimizer: Callable[[dict], optax.GradientTransformation], mode,
               hyperparameter_items: tuple):
    """The jitted `(params, opt_state, model_state, batch, rng, injected) -> (params, opt_state, model_state,
    loss)` for one workload and point, compiled on first use; `injected` values replace the optimizer's
    injected hyperparameters of the same names before its update."""
    hyperparameters = dict(hyperparameter_items)
    optimizer = make_optimizer(hyperparameters)

    def step(params, opt_state, model_state, batch, rng, injected):
        (loss, new_model_state), grads = jax.value_and_grad(
            lambda p: mean_loss(workload, p, model_state, batch, mode, rng, hyperparameters), has_aux=True)(params)
        for name, value in injected.items():
            opt_state.hyperparams[name] = value
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, new_model_state, loss

    return jax.jit(step)


def update(workload, make_optimizer, mode, hyperparameters, params, optimizer_state, model_state, batch,
           global_step: int, rng, **injected):
    """One AlgoPerf `update_params` step of an optax optimizer whose state is `optimizer_state["opt_state"]`:
    returns (optimizer_state, params, model_state) and logs the training loss (read at evaluation)."""
    step = train_step(workload, make_optimizer, mode, tuple(sorted(hyperparameters.items())))
    params, opt_state, model_state, loss = step(params, optimizer_state["opt_state"], model_state, batch, rng, injected)
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
    return {"opt_state": opt_state}, params, model_state


def warmup_cosine_functions(make_optimizer: Callable[[dict], optax.GradientTransformation], mode):
    """AlgoPerf's `init_optimizer_state` and `update_params` for an optax optimizer whose injected
    `learning_rate` is `hyperparameters.learning_rate` x warm-up + cosine over step_hint (`warmup_factor`):
    the PyTorch baselines' schedule."""

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {"opt_state": make_optimizer(hyperparameters).init(model_params)}

    def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                      batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
        learning_rate = hyperparameters.learning_rate * schedules.warmup_cosine(
            global_step, workload.step_hint, hyperparameters.warmup_factor)
        return update(workload, make_optimizer, mode, hyperparameters, current_param_container, optimizer_state,
                      model_state, batch, global_step, rng, learning_rate=learning_rate)

    return init_optimizer_state, update_params
