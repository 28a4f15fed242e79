"""SAF / MESA (Du, Zhou, Feng, Tan & Zhou, Sharpness-Aware Training for Free, NeurIPS 2022).

SAF replaces SAM's second forward/backward pass by a trajectory loss: the KL divergence, at
temperature tau, between the model's current outputs and the outputs it gave the *same examples*
E epochs ago, which SAF keeps in a per-example memory indexed by the data loader's example index:

    L = L_CE(w_t) + lambda * tau^2 * mean_i KL( softmax(f(x_i; w_{t-E}) / tau) || softmax(f(x_i; w_t) / tau) )

This harness's batches carry no example indices (the logistic-regression stream reshuffles, the
image stream augments, the language-model stream samples random windows), so an output "recorded E
epochs ago on the same example" does not exist here. This submission therefore implements MESA,
the memory-efficient variant of the same paper, whose teacher is an exponential moving average of
the weights, evaluated on the current batch:

    w_ema <- d * w_ema + (1 - d) * w_t                      (after every step, from the first)
    L = L_CE(w_t) + lambda * tau^2 * mean_i KL( p_tau(x_i; w_ema) || p_tau(x_i; w_t) )

with the trajectory term switched on from step kl_start_fraction * step_hint (E_start). The
teacher runs in evaluation mode (running batch-norm statistics of its own averaged buffers, no
dropout), as the authors' EMA model does. p_tau is the softmax of logits / tau over the last
axis for softmax cross-entropy workloads and, for sigmoid cross-entropy, the Bernoulli
distribution sigmoid(logit / tau) of each output. The base step is SGD with heavy-ball momentum
(the paper's CIFAR setting) or AdamW, with warm-up and cosine decay. One extra forward pass per
step (the teacher's), no extra backward pass.

Divergence is the runner's to decide (docs/submission_api.md): the loss goes to
`workload.metrics_logger` as a tensor each step, and the runner ends the trial `diverged` at the
next evaluation if a logged loss is not finite. So this submission reads no loss on the host and
needs nothing from the engine's internals.
"""

import copy

import torch
import torch.nn.functional as F

from harness.core import spec
from optimlib import schedules
from optimlib.hyperparameters import BASE_OPTIMIZERS


def trajectory_loss(student_logits, teacher_logits, loss_type, temperature, weights=None):
    """tau^2 * mean KL(p_tau(teacher) || p_tau(student)) over the examples (tokens) of the batch."""
    s, t = student_logits / temperature, teacher_logits.detach() / temperature
    if loss_type == spec.LossType.SOFTMAX_CROSS_ENTROPY:
        log_p = F.log_softmax(t, dim=-1)
        kl = (log_p.exp() * (log_p - F.log_softmax(s, dim=-1))).sum(-1)
    elif loss_type == spec.LossType.SIGMOID_CROSS_ENTROPY:
        p = torch.sigmoid(t)
        kl = (p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s)))
    else:
        raise spec.UnsupportedWorkloadError(f"saf: no output distribution for loss type {loss_type}")
    if weights is not None:
        w = weights.reshape(weights.shape + (1,) * (kl.dim() - weights.dim())).expand_as(kl)
        mean = (kl * w).sum() / w.sum().clamp_min(1e-12)
    else:
        mean = kl.mean()
    return temperature**2 * mean


def check_hyperparameters(hp):
    if hp.base_optimizer not in BASE_OPTIMIZERS:
        raise ValueError(f"saf: base_optimizer={hp.base_optimizer!r}; valid: {sorted(BASE_OPTIMIZERS)}")
    if not hp.temperature > 0:
        raise ValueError(f"saf: temperature must be > 0, got temperature={hp.temperature}")
    if not 0.0 <= hp.ema_decay < 1.0:
        raise ValueError(f"saf: ema_decay must be in [0, 1), got ema_decay={hp.ema_decay}")
    if hp.kl_weight < 0:
        raise ValueError(f"saf: kl_weight (lambda) must be >= 0, got kl_weight={hp.kl_weight}")


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    check_hyperparameters(hyperparameters)
    if workload.loss_type not in (spec.LossType.SOFTMAX_CROSS_ENTROPY, spec.LossType.SIGMOID_CROSS_ENTROPY):
        raise spec.UnsupportedWorkloadError(f"saf: the trajectory loss needs class probabilities; loss type {workload.loss_type}")
    optimizer = BASE_OPTIMIZERS[hyperparameters.base_optimizer](
        [p for p in model_params.parameters() if p.requires_grad], hyperparameters)
    teacher = copy.deepcopy(model_params)
    teacher.requires_grad_(False)
    return {"optimizer": optimizer, "base_lrs": [g["lr"] for g in optimizer.param_groups], "teacher": teacher}


@torch.no_grad()
def update_teacher(teacher, model, decay):
    """w_ema <- d w_ema + (1 - d) w for parameters and floating-point buffers; other buffers copied."""
    for t, s in zip(teacher.parameters(), model.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), model.buffers()):
        if t.is_floating_point():
            t.mul_(decay).add_(s, alpha=1.0 - decay)
        else:
            t.copy_(s)


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    hp, model = hyperparameters, current_param_container
    optimizer, teacher = optimizer_state["optimizer"], optimizer_state["teacher"]
    multiplier = schedules.warmup_cosine(global_step, workload.step_hint, hp.warmup_factor)
    for group, base_lr in zip(optimizer.param_groups, optimizer_state["base_lrs"]):
        group["lr"] = base_lr * multiplier
    use_trajectory = hp.kl_weight > 0 and global_step >= hp.kl_start_fraction * workload.step_hint
    if use_trajectory:
        # The teacher goes first: a workload's model_fn may keep per-forward state for its loss_fn.
        with torch.no_grad():
            teacher_logits, _ = workload.model_fn(
                params=teacher, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
                mode=spec.ForwardPassMode.EVAL, rng=rng, update_batch_norm=False)
    optimizer.zero_grad(set_to_none=True)
    logits, new_model_state = workload.model_fn(
        params=model, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=True, dropout_rate=hp.get("dropout_rate"))
    out = workload.loss_fn(batch["targets"], logits, batch.get("weights"), hp.get("label_smoothing", 0.0))
    loss = out["summed"] / out["n_valid_examples"]
    total = loss
    metrics = {"train_loss": loss.detach()}
    if use_trajectory:
        kl = trajectory_loss(logits, teacher_logits, workload.loss_type, hp.temperature, batch.get("weights"))
        total = loss + hp.kl_weight * kl
        metrics["trajectory_loss"] = kl.detach()
    total.backward()
    optimizer.step()
    update_teacher(teacher, model, hp.ema_decay)
    if workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics(metrics, global_step)
    return optimizer_state, model, new_model_state
