"""NAdamW with linear warm-up + cosine decay driven by `step_hint`: AlgoPerf's baseline, written
against the full AlgoPerf submission API (it doubles as timetrial's example of that API).

NAdam (Dozat, 2016) applies the Nesterov look-ahead to Adam's first moment; weight decay is
decoupled as in AdamW: p <- p * (1 - lr * wd) - lr * m_nesterov_hat / (sqrt(v_hat) + eps).
"""


import torch

from algoperf import spec
from optimlib import schedules


class NAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid NAdamW settings: lr={lr} betas={betas} eps={eps} wd={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1.0 - lr * weight_decay)
                m.mul_(beta1).add_(g, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                nesterov_m = m * beta1 + g * (1.0 - beta1)
                denom = (v / (1.0 - beta2**t)).sqrt_().add_(eps)
                p.addcdiv_(nesterov_m, denom, value=-lr / (1.0 - beta1**t))
        return loss


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    optimizer = NAdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    return {"optimizer": optimizer, "step_hint": workload.step_hint}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    model = current_param_container
    optimizer = optimizer_state["optimizer"]
    multiplier = schedules.warmup_cosine(global_step, optimizer_state["step_hint"], hyperparameters.warmup_factor)
    for group in optimizer.param_groups:
        group["lr"] = hyperparameters.learning_rate * multiplier
    model.train()
    optimizer.zero_grad(set_to_none=True)
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
        dropout_rate=hyperparameters.get("dropout_rate"),
    )
    loss_dict = workload.loss_fn(batch["targets"], logits, batch.get("weights"),
                                 hyperparameters.get("label_smoothing", 0.0))
    loss = loss_dict["summed"] / loss_dict["n_valid_examples"]
    loss.backward()
    grad_clip = hyperparameters.get("grad_clip")
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
    optimizer.step()
    # a tensor, read at evaluation (no device sync here); the runner marks a non-finite loss diverged
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss.detach()}, global_step)
    return optimizer_state, model, new_model_state
