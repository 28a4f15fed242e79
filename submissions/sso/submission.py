"""SSO, stochastic surrogate optimization with target-based surrogates (Lavington, Vaswani, Babanezhad,
Schmidt, Le Roux: Target-based Surrogates for Stochastic Optimization, ICML 2023), written against the
AlgoPerf API because it works on the model outputs.

Each step takes a gradient step in target (output) space on the batch and then fits the model to
it with m cheap inner steps, reusing the outer step's targets:

    z_t = f(theta_t)                      (batch outputs, fixed for the step)
    S_t(theta) = mean_i [ <dl_i/dz (z_t), f_i(theta) - z_t> + ||f_i(theta) - z_t||^2 / (2 eta) ] + r(theta)
    theta <- theta - lr grad S_t(theta),  m times (SSO-SGD)

S_t is the loss's first-order model around z_t plus a proximal term: minimising it moves the
outputs toward the target z_t - eta dl/dz, i.e. a projected gradient step in function space. The
sum is per example (eta is a per-example target step). r(theta) is whatever part of the loss does
not go through the outputs (the logistic-regression workloads' L2 term, added by their loss_fn):
it is kept exactly, since only the output loss is linearised. The paper's stochastic line search
for the inner step size is not included; lr follows timetrial's schedule.
"""


import torch

from algoperf import spec
from optimlib import schedules


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    if hyperparameters.target_step <= 0 or int(hyperparameters.inner_steps) < 1:
        raise ValueError(f"invalid SSO settings: target_step={hyperparameters.target_step} (> 0), "
                         f"inner_steps={hyperparameters.inner_steps} (>= 1)")
    return {"step_hint": workload.step_hint}


def _forward(workload, model, batch, model_state, rng, update_batch_norm):
    return workload.model_fn(params=model, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
                             mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=update_batch_norm)


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    model = current_param_container
    lr = hyperparameters.learning_rate * schedules.warmup_cosine(
        global_step, optimizer_state["step_hint"], hyperparameters.warmup_factor)
    eta = hyperparameters.target_step
    logits, new_model_state = _forward(workload, model, batch, model_state, rng, update_batch_norm=True)
    targets = logits.detach().requires_grad_(True)
    out = workload.loss_fn(batch["targets"], targets, batch.get("weights"))
    n = out["n_valid_examples"]
    (output_grad,) = torch.autograd.grad(out["per_example"].sum(), targets)  # dl_i/dz at z_t, per example
    loss_value = (out["summed"] / n).detach()  # read at evaluation: no device sync per step
    for _ in range(int(hyperparameters.inner_steps)):
        outputs, _ = _forward(workload, model, batch, new_model_state, rng, update_batch_norm=False)
        # loss_fn at the fixed z_t carries only the parameter-dependent terms that bypass the outputs.
        fixed = workload.loss_fn(batch["targets"], targets.detach(), batch.get("weights"))["summed"]
        residual = outputs - targets.detach()
        proximal = residual.pow(2)
        if batch.get("weights") is not None:  # padded examples carry no proximal term either
            mask = batch["weights"]
            proximal = proximal * mask.reshape(mask.shape + (1,) * (proximal.dim() - mask.dim()))
        surrogate = (fixed + (output_grad * residual).sum() + proximal.sum() / (2 * eta)) / n
        model.zero_grad(set_to_none=True)
        surrogate.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.sub_(lr * p.grad)
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss_value}, global_step)
    return optimizer_state, model, new_model_state
