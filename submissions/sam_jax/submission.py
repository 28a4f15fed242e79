"""SAM (`optax.contrib.sam`) in JAX through AlgoPerf's functional API: the JAX twin of the PyTorch
`sam` submission, with its base optimizers, warm-up + cosine schedule and hyperparameter names.

One `update_params` is one SAM step, as in the PyTorch twin, so optax's SAM runs in opaque mode with
sync_period 2: one adversarial step w + rho g / ||g|| (optax.contrib.normalize, then SGD at rate rho,
which opaque mode applies as an ascent), the gradient there from `grad_fn` on the same batch, and the
base optimizer's step from the unperturbed w. Base optimizers: "sgd_momentum" (torch.optim.SGD's L2
weight decay and heavy-ball momentum, lr outside the buffer) and "adamw" (optax.adamw, which
adamw_jax checks against torch.optim.AdamW). One convention differs: the PyTorch twin divides by
||g|| + 1e-12, optax's normalize by ||g|| (a relative change below 1e-12 at any gradient norm the
benchmark sees).
"""

import functools

import jax
import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps, schedules


def sgd_momentum(learning_rate, momentum, weight_decay) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=momentum))


def _base_optimizer(hyperparameters) -> optax.GradientTransformation:
    name, beta1 = hyperparameters["base_optimizer"], 1.0 - hyperparameters["one_minus_beta1"]
    if name == "sgd_momentum":
        return optax.inject_hyperparams(sgd_momentum)(learning_rate=hyperparameters["learning_rate"], momentum=beta1,
                                                      weight_decay=hyperparameters["weight_decay"])
    if name == "adamw":
        return optax.inject_hyperparams(optax.adamw)(
            learning_rate=hyperparameters["learning_rate"], b1=beta1, b2=hyperparameters["beta2"],
            eps=hyperparameters["epsilon"], weight_decay=hyperparameters["weight_decay"])
    raise ValueError(f"sam_jax: base_optimizer={name!r}; valid: ['adamw', 'sgd_momentum']")


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(hyperparameters["rho"]))
    return optax.contrib.sam(_base_optimizer(hyperparameters), adversary, sync_period=2, opaque_mode=True)


@functools.lru_cache(maxsize=8)
def _train_step(workload, hyperparameter_items: tuple):
    """The jitted step for one workload and hyperparameter point, compiled on first use."""
    hyperparameters = dict(hyperparameter_items)
    optimizer = _optimizer(hyperparameters)

    def step(params, opt_state, model_state, batch, learning_rate):
        def loss_of(p):
            return optax_steps.mean_loss(workload, p, model_state, batch, ForwardPassMode.TRAIN, None, hyperparameters)

        (loss, new_model_state), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        opt_state.opt_state.hyperparams["learning_rate"] = learning_rate  # the base optimizer's

        def grad_at(perturbed, _):
            return jax.grad(lambda p: loss_of(p)[0])(perturbed)

        updates, opt_state = optimizer.update(grads, opt_state, params, grad_fn=grad_at)
        return optax.apply_updates(params, updates), opt_state, new_model_state, loss

    return jax.jit(step)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"opt_state": _optimizer(hyperparameters).init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    learning_rate = hyperparameters.learning_rate * schedules.warmup_cosine(
        global_step, round(hyperparameters.step_hint_factor * workload.step_hint), hyperparameters.warmup_factor)
    params, opt_state, model_state, loss = _train_step(workload, tuple(sorted(hyperparameters.items())))(
        current_param_container, optimizer_state["opt_state"], model_state, batch, learning_rate)
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
    return {"opt_state": opt_state}, params, model_state
