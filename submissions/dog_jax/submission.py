"""DoG (`optax.contrib.dog`) in JAX through AlgoPerf's functional API: the JAX twin of the PyTorch `dog`
submission (optimlib/dog.py, one step size for the whole model), with its hyperparameter names and
the paper's polynomial-decay average of the iterates for evaluation.

optax's dog is the twin's update as configured here: init_step ("heuristic", reps_rel) gives
rbar_0 = reps_rel (1 + ||x_0||); eta_t = lr max(rbar_0, max_s ||x_s - x_0||) / sqrt(eps + sum ||g||^2);
weight decay added to the gradient first (the official code's L2 form, counted in the gradient
norms); no schedule, as the twin. The average xbar_t = xbar_{t-1} + c_t (x_t - xbar_{t-1}),
c_t = (1 + gamma) / (t + gamma) (c_1 = 1: xbar_1 = x_1), is kept in the optimizer state;
`prepare_for_eval` returns it and keeps the iterate, which the next `update_params` trains from.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    return optax.contrib.dog(learning_rate=hyperparameters["learning_rate"],
                             init_step=("heuristic", hyperparameters["reps_rel"]), eps=hyperparameters["epsilon"],
                             weight_decay=hyperparameters["weight_decay"])


@functools.lru_cache(maxsize=8)
def _train_step(workload, hyperparameter_items: tuple):
    """The jitted step for one workload and hyperparameter point, compiled on first use."""
    hyperparameters = dict(hyperparameter_items)
    optimizer = _optimizer(hyperparameters)

    def step(params, opt_state, average, average_weight, model_state, batch):
        def loss_of(p):
            return optax_steps.mean_loss(workload, p, model_state, batch, ForwardPassMode.TRAIN, None, hyperparameters)

        (loss, new_model_state), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        average = jax.tree.map(lambda a, p: a + average_weight * (p - a), average, params)
        return params, opt_state, average, new_model_state, loss

    return jax.jit(step)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    # the average starts at zero so that the first step's weight 1 makes it x_1 exactly
    return {"opt_state": _optimizer(hyperparameters).init(model_params),
            "average": jax.tree.map(jnp.zeros_like, model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    # after an evaluation the container holds the average: train on from the iterate kept aside
    params = optimizer_state.get("train_params", current_param_container)
    gamma = hyperparameters.averaging_gamma
    average_weight = (1.0 + gamma) / (global_step + 1 + gamma)
    params, opt_state, average, model_state, loss = _train_step(workload, tuple(sorted(hyperparameters.items())))(
        params, optimizer_state["opt_state"], optimizer_state["average"], average_weight, model_state, batch)
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
    return {"opt_state": opt_state, "average": average}, params, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state, hyperparameters,
                     loss_type, optimizer_state, eval_results, global_step, rng):
    iterate = optimizer_state.get("train_params", current_param_container)
    return {**optimizer_state, "train_params": iterate}, optimizer_state["average"], model_state
