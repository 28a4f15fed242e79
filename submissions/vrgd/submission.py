"""VRGD (Jiang, Liu, Ding, Guo & Lin, Accelerating Large Batch Training via Gradient Signal to
Noise Ratio (GSNR), 2023): scale each coordinate of the gradient by its normalised gradient
signal-to-noise ratio, estimated from the k per-device gradients of a data-parallel step, and
hand the scaled gradient to a base optimizer (VR-SGD, VR-Adam, ...).

Here the k "devices" are k equal micro-batches of the step's batch (one forward/backward each):

    g_d = grad of the mean loss of micro-batch d,  d = 1..k
    g = (1/k) sum_d g_d,   sigma^2 = (1/k) sum_d g_d^2 - g^2          (per coordinate)
    r = g^2 / (sigma^2 + eps)                                           (GSNR)
    r <- r / mean_layer(r)       (normalised to mean 1 within each parameter tensor / layer)
    r <- min(max(r, gamma), 1)   (confined to [gamma, 1])
    g_vr = r * g

and g_vr feeds the base optimizer: SGD with heavy-ball momentum (VR-SGD) or AdamW (VR-Adam), with
warm-up and cosine decay. Coordinates whose gradient is consistent across micro-batches keep
their full step; noisy ones are damped, at most down to gamma.

Divergence is the runner's to decide (docs/submission_api.md): the loss goes to
`workload.metrics_logger` as a tensor each step, and the runner ends the trial `diverged` at the
next evaluation if a logged loss is not finite. So this submission reads no loss on the host and
needs nothing from the engine's internals.
"""

import torch

from harness.core import spec
from optimlib import schedules
from optimlib.hyperparameters import BASE_OPTIMIZERS


def check_hyperparameters(hp):
    if hp.base_optimizer not in BASE_OPTIMIZERS:
        raise ValueError(f"vrgd: base_optimizer={hp.base_optimizer!r}; valid: {sorted(BASE_OPTIMIZERS)}")
    if int(hp.num_micro_batches) != hp.num_micro_batches or hp.num_micro_batches < 2:
        raise ValueError(f"vrgd: num_micro_batches must be an integer >= 2 (the GSNR needs a variance), "
                         f"got num_micro_batches={hp.num_micro_batches}")
    if not 0.0 < hp.gamma <= 1.0:
        raise ValueError(f"vrgd: gamma (the GSNR floor) must be in (0, 1], got gamma={hp.gamma}")
    if not hp.gsnr_epsilon > 0:
        raise ValueError(f"vrgd: gsnr_epsilon must be > 0, got gsnr_epsilon={hp.gsnr_epsilon}")


def gsnr_scale(mean: torch.Tensor, second_moment: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    """The confined, layer-normalised GSNR of one parameter tensor."""
    variance = (second_moment - mean.square()).clamp_min(0.0)
    ratio = mean.square() / (variance + eps)
    ratio = ratio / ratio.mean().clamp_min(torch.finfo(ratio.dtype).tiny)
    return ratio.clamp(min=gamma, max=1.0)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    check_hyperparameters(hyperparameters)
    params = [p for p in model_params.parameters() if p.requires_grad]
    optimizer = BASE_OPTIMIZERS[hyperparameters.base_optimizer](params, hyperparameters)
    return {"optimizer": optimizer, "base_lrs": [g["lr"] for g in optimizer.param_groups]}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    hp, model = hyperparameters, current_param_container
    k = int(hp.num_micro_batches)
    size = len(batch["targets"])
    if size < k:
        raise ValueError(f"vrgd: the batch has {size} examples, fewer than num_micro_batches={k}")
    optimizer = optimizer_state["optimizer"]
    multiplier = schedules.warmup_cosine(global_step, workload.step_hint, hp.warmup_factor)
    for group, base_lr in zip(optimizer.param_groups, optimizer_state["base_lrs"]):
        group["lr"] = base_lr * multiplier
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sums = [torch.zeros_like(p) for p in params]
    squares = [torch.zeros_like(p) for p in params]
    chunks = {key: torch.tensor_split(value, k) for key, value in batch.items()}
    losses = []
    for d in range(k):
        micro_batch = {key: value[d] for key, value in chunks.items()}
        logits, model_state = workload.model_fn(
            params=model, augmented_and_preprocessed_input_batch=micro_batch, model_state=model_state,
            mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=True, dropout_rate=hp.get("dropout_rate"))
        out = workload.loss_fn(micro_batch["targets"], logits, micro_batch.get("weights"), hp.get("label_smoothing", 0.0))
        loss = out["summed"] / out["n_valid_examples"]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for s, q, g in zip(sums, squares, grads):
                if g is not None:
                    s.add_(g)
                    q.addcmul_(g, g)
        losses.append(loss.detach())
    loss = torch.stack(losses).mean()
    with torch.no_grad():
        for p, s, q in zip(params, sums, squares):
            mean, second_moment = s / k, q / k
            p.grad = gsnr_scale(mean, second_moment, hp.gamma, hp.gsnr_epsilon) * mean
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
    return optimizer_state, model, model_state
