"""Schedule-Free AdamW (`optax.contrib.schedule_free`) in JAX through AlgoPerf's functional API: the
JAX twin of the PyTorch `schedule_free_adamw` submission (the schedulefree package's AdamWScheduleFree),
with its hyperparameter names and warm-up of int(warmup_factor * step_hint * step_hint_factor) steps.

The base step is optax.contrib.schedule_free_adamw's (RMS scaling with bias correction, eps outside the
root, weight decay taken at y, scale by -lr_t), chained here by hand so that two conventions can be
matched to the PyTorch twin:
- Averaging weights. The twin weights iterate t by t^r * lr_max,t^p; optax's schedule_free weights it
  by max_{s<=t}(its `learning_rate`)^p and has no r. Its `learning_rate` is used only for that weight
  (the base step has its own), so it is given t^(r/p) * lr_t: the warm-up + constant lr_t never
  decreases, so neither does that product, its running maximum is itself, and its p-th power is
  t^r * lr_max,t^p exactly.
- Evaluation point. The trained parameters are y; `prepare_for_eval` returns x (optax's
  schedule_free_eval_params) and keeps y in the optimizer state, which the next `update_params` trains
  from again (as the twin's eval_mode/train_mode switch).
"""

import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps


def schedule_free_adamw(learning_rate, weighting_learning_rate, b1, b2, eps, weight_decay, weight_lr_power):
    base = optax.chain(optax.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
                       optax.add_decayed_weights(weight_decay), optax.scale_by_learning_rate(learning_rate))
    return optax.contrib.schedule_free(base, learning_rate=weighting_learning_rate, b1=b1,
                                       weight_lr_power=weight_lr_power)


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    if hyperparameters["weight_lr_power"] <= 0:
        raise ValueError("schedule_free_adamw_jax needs weight_lr_power > 0 (r enters through lr^(r/p))")
    return optax.inject_hyperparams(schedule_free_adamw)(
        learning_rate=0.0, weighting_learning_rate=0.0, b1=1.0 - hyperparameters["one_minus_beta1"],
        b2=hyperparameters["beta2"], eps=hyperparameters["epsilon"], weight_decay=hyperparameters["weight_decay"],
        weight_lr_power=hyperparameters["weight_lr_power"])




def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"opt_state": _optimizer(hyperparameters).init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    # after an evaluation the container holds x: train on from the y that prepare_for_eval kept
    params = optimizer_state.get("train_params", current_param_container)
    warmup_steps = int(hyperparameters.warmup_factor * workload.step_hint * hyperparameters.step_hint_factor)
    warmup = min(1.0, (global_step + 1) / warmup_steps) if warmup_steps else 1.0  # the twin's, from its step count
    learning_rate = hyperparameters.learning_rate * warmup
    weighting_learning_rate = (global_step + 1) ** (hyperparameters.r / hyperparameters.weight_lr_power) * learning_rate
    return optax_steps.update(workload, _optimizer, ForwardPassMode.TRAIN, hyperparameters, params, optimizer_state,
                              model_state, batch, global_step, rng, learning_rate=learning_rate,
                              weighting_learning_rate=weighting_learning_rate)


def prepare_for_eval(workload, current_param_container, current_params_types, model_state, hyperparameters,
                     loss_type, optimizer_state, eval_results, global_step, rng):
    y = optimizer_state.get("train_params", current_param_container)
    x = optax.contrib.schedule_free_eval_params(optimizer_state["opt_state"].inner_state, y)
    return {**optimizer_state, "train_params": y}, x, model_state
