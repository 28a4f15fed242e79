"""SGD with heavy-ball momentum, or Nesterov momentum when `nesterov` is true, in JAX through AlgoPerf's
functional API: the JAX twin of both PyTorch `sgd_momentum` (nesterov false) and `sgd_nesterov` (true).

torch.optim.SGD's update, as an optax chain (the learning rate injected each step from the same
warm-up + cosine schedule):
    g <- g + wd p                          L2 weight decay, coupled (optax.add_decayed_weights first)
    b <- mu b + g                          no dampening; the first step's buffer is g (optax.trace from 0)
    d <- g + mu b if nesterov else b
    p <- p - lr d                          lr outside the buffer, as torch (a schedule change is immediate)
"""

import functools

import jax
import optax

from harness.core.spec import ForwardPassMode
from optimlib import schedules


def sgd_momentum(learning_rate, momentum, nesterov, weight_decay) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.trace(decay=momentum, nesterov=nesterov),
                       optax.scale_by_learning_rate(learning_rate))


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    # `nesterov` is a Python bool that picks the code path, so it is static, not an injected array
    return optax.inject_hyperparams(sgd_momentum, static_args=("nesterov",))(
        learning_rate=hyperparameters["learning_rate"], momentum=1.0 - hyperparameters["one_minus_beta1"],
        nesterov=bool(hyperparameters["nesterov"]), weight_decay=hyperparameters["weight_decay"])


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
