"""Prodigy (`optax.contrib.prodigy`) in JAX through AlgoPerf's functional API: the JAX twin of the
PyTorch `prodigy` submission (the paper's Algorithm 3, Adam form, without bias correction), with its
warm-up + cosine multiplier lr_k and hyperparameter names (d0 is optax's estim_lr0).

Two conventions differ, one matched here and one left:
- Bias correction. optax multiplies the step size d lr_k (and with it the weights of the d estimate's
  sums r and s) by sqrt(1 - beta2^t) / (1 - beta1^t), and has no switch for it; the PyTorch twin has
  none. The learning rate handed to optax is lr_k divided by that factor, which cancels it: optax's
  step size is then d lr_k, and its r and s are the twin's times 1 / (1 - sqrt(beta2)), a factor their
  ratio d does not see.
- eps. optax adds d_{t+1} eps to sqrt(v) (the estimate updated in the same step), the twin d_t eps
  (the one the step uses); optax's arguments cannot change that. On logreg_wine its effect is below
  float32 noise: 40 steps with eps 1e-8 and with eps 0 differ from the twin alike (measured 2.5e-4 and
  2.0e-4 at parameters of size 5; tests/test_optax_submissions.py).
"""

import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps, schedules


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.contrib.prodigy, static_args=("betas",))(
        learning_rate=hyperparameters["learning_rate"], betas=(hyperparameters["beta1"], hyperparameters["beta2"]),
        eps=hyperparameters["epsilon"], estim_lr0=hyperparameters["d0"], weight_decay=hyperparameters["weight_decay"])




def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"opt_state": _optimizer(hyperparameters).init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    t = global_step + 1  # optax's count after this step's increment
    bias_correction = (1.0 - hyperparameters.beta2 ** t) ** 0.5 / (1.0 - hyperparameters.beta1 ** t)
    learning_rate = hyperparameters.learning_rate * schedules.warmup_cosine(
        global_step, workload.step_hint, hyperparameters.warmup_factor) / bias_correction
    return optax_steps.update(workload, _optimizer, ForwardPassMode.TRAIN, hyperparameters, current_param_container,
                              optimizer_state, model_state, batch, global_step, rng, learning_rate=learning_rate)
