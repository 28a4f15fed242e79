"""Adam's moments and direction, one job each (like optax's `scale_by_adam`, split in two so that
methods that change one moment or the bias correction keep the rest).

    m_t = b1 m + (1 - b1) g,   v_t = b2 v + (1 - b2) g^2,   t = t + 1       (`update_moments`)
    sqrt(v_t / (1 - b2^t)) + eps                                             (`bias_corrected_denominator`)
    (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)                      (`adam_direction`)
"""

from __future__ import annotations

import torch


def adam_defaults(method: str, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> dict:
    """An Adam variant's param-group defaults, checked (lr > 0, 0 <= betas < 1, eps, weight_decay >= 0)."""
    if lr <= 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"{method}: invalid lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
    return {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}


def update_moments(grad: torch.Tensor, state: dict, betas: tuple[float, float]) -> int:
    """Advance Adam's two moments of one tensor by `grad` and return the new step count t; `state` (a
    parameter's optimizer state) gets `step`, `exp_avg` and `exp_avg_sq` on first use."""
    beta1, beta2 = betas
    if "exp_avg" not in state:
        state.update(step=0, exp_avg=torch.zeros_like(grad), exp_avg_sq=torch.zeros_like(grad))
    state["step"] += 1
    state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    return state["step"]


def bias_corrected_denominator(exp_avg_sq: torch.Tensor, beta2: float, step: int, eps: float) -> torch.Tensor:
    """sqrt(v / (1 - beta2^step)) + eps, Adam's denominator (a new tensor)."""
    return (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)


def adam_direction(grad: torch.Tensor, state: dict, betas: tuple[float, float], eps: float) -> torch.Tensor:
    """Adam's bias-corrected m_hat / (sqrt(v_hat) + eps) for one tensor, after updating its moments."""
    t = update_moments(grad, state, betas)
    denom = bias_corrected_denominator(state["exp_avg_sq"], betas[1], t, eps)
    return state["exp_avg"] / (1 - betas[0]**t) / denom
