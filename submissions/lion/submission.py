"""Lion and the Lion-K family (Chen et al., Lion Secretly Solves Constrained Optimization: As
Lyapunov Predicts), with warm-up + cosine decay.

    c       = beta1 * m + (1 - beta1) * g
    theta  -= lr * (grad K(c) + lambda * theta)
    m       = beta2 * m + (1 - beta2) * g

kappa = "l1": K(x) = ||x||_1, grad K = sign (Lion). kappa = "l2": K(x) = ||x||_2, grad K = c / ||c||_2
(a normalized update, taken per parameter tensor). With weight decay lambda, Lion-K minimizes
f(x) + K*(lambda x) / lambda; for Lion that is f subject to ||x||_inf <= 1 / lambda.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


def sign_direction(c: torch.Tensor) -> torch.Tensor:
    return torch.sign(c)


def normalized_direction(c: torch.Tensor) -> torch.Tensor:
    return c / c.norm().clamp_min(torch.finfo(c.dtype).tiny)


KAPPA_DIRECTIONS = {"l1": sign_direction, "l2": normalized_direction}


class LionK(PerParameterOptimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, kappa="l1"):
        if kappa not in KAPPA_DIRECTIONS:
            raise ValueError(f"Lion kappa={kappa!r}; valid: {sorted(KAPPA_DIRECTIONS)}")
        if lr <= 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Lion settings: lr={lr} betas={betas} weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay, "kappa": kappa})

    def update_parameter(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
        m = state["exp_avg"]
        update = KAPPA_DIRECTIONS[group["kappa"]](m * beta1 + grad * (1.0 - beta1))
        p.mul_(1.0 - group["lr"] * group["weight_decay"]).sub_(update, alpha=group["lr"])
        m.mul_(beta2).add_(grad, alpha=1.0 - beta2)


def create_optimizer(params, hyperparameters, workload):
    return LionK(params.parameters(), lr=hyperparameters.learning_rate,
                 betas=(hyperparameters.beta1, hyperparameters.beta2),
                 weight_decay=hyperparameters.weight_decay, kappa=hyperparameters.kappa)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
