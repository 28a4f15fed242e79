"""Adan (Xie et al., Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
Models), in the official code's form with bias correction, warm-up + cosine decay.

    d_t = g_t - g_{t-1}                      (d_1 = 0)
    m_t = b1 m + (1 - b1) g_t
    v_t = b2 v + (1 - b2) d_t
    n_t = b3 n + (1 - b3) (g_t + b2 d_t)^2
    theta = (theta - lr (m_hat + b2 v_hat) / (sqrt(n_hat) + eps)) / (1 + lr * wd)

Betas follow the code's convention (b = 1 - beta of the paper: 0.98, 0.92, 0.99). The weight
decay is the paper's proximal step. With `restart_interval` > 0 the moments restart every that
many steps (the paper's restart strategy): m, v, n and the previous gradient are reset.
"""

import torch

from optimlib import schedules
from optimlib.adam import bias_corrected_denominator
from optimlib.per_parameter import PerParameterOptimizer


class Adan(PerParameterOptimizer):
    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, restart_interval=0):
        if lr <= 0 or eps < 0 or weight_decay < 0 or restart_interval < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Adan settings: lr={lr} betas={betas} eps={eps} weight_decay={weight_decay} "
                             f"restart_interval={restart_interval}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "restart_interval": restart_interval})

    def update_parameter(self, p, grad, state, group):
        beta1, beta2, beta3 = group["betas"]
        lr, restart_interval = group["lr"], group["restart_interval"]
        g = grad
        if not state or (restart_interval and state["step"] == restart_interval):
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_diff=torch.zeros_like(p),
                         exp_avg_sq=torch.zeros_like(p), previous_grad=g.clone())
        state["step"] += 1
        t = state["step"]
        diff = g - state["previous_grad"]
        state["exp_avg"].mul_(beta1).add_(g, alpha=1.0 - beta1)
        state["exp_avg_diff"].mul_(beta2).add_(diff, alpha=1.0 - beta2)
        nesterov_grad = g + beta2 * diff
        state["exp_avg_sq"].mul_(beta3).addcmul_(nesterov_grad, nesterov_grad, value=1.0 - beta3)
        denom = bias_corrected_denominator(state["exp_avg_sq"], beta3, t, group["eps"])
        direction = state["exp_avg"] / (1.0 - beta1**t) + beta2 * state["exp_avg_diff"] / (1.0 - beta2**t)
        p.addcdiv_(direction, denom, value=-lr).div_(1.0 + lr * group["weight_decay"])
        state["previous_grad"].copy_(g)


def create_optimizer(params, hyperparameters, workload):
    return Adan(params.parameters(), lr=hyperparameters.learning_rate,
                betas=(hyperparameters.beta1, hyperparameters.beta2, hyperparameters.beta3),
                eps=hyperparameters.epsilon, weight_decay=hyperparameters.weight_decay,
                restart_interval=hyperparameters.restart_interval)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
