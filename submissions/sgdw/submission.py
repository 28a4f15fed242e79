"""SGDW (Loshchilov & Hutter, Decoupled Weight Decay Regularization, Algorithm 1): SGD with
momentum whose weight decay is decoupled from the gradient step, with warm-up + cosine decay.

    m_t     = beta * m_{t-1} + eta_t * alpha * g_t
    theta_t = theta_{t-1} - m_t - eta_t * lambda * theta_{t-1}

alpha is the learning rate, eta_t the schedule multiplier and lambda the weight decay: the decay
follows the schedule but not alpha, which is what makes the best lambda independent of alpha.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


class SGDW(PerParameterOptimizer):
    def __init__(self, params, lr=0.1, momentum=0.9, weight_decay=0.0):
        if lr <= 0 or not 0.0 <= momentum < 1.0 or weight_decay < 0:
            raise ValueError(f"invalid SGDW settings: lr={lr} momentum={momentum} weight_decay={weight_decay}")
        # initial_lr: the harness rescales `lr` each step; eta_t = lr / initial_lr recovers the multiplier.
        super().__init__(params, {"lr": lr, "initial_lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def update_parameter(self, p, grad, state, group):
        multiplier = group["lr"] / group["initial_lr"]
        if not state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buffer = state["momentum_buffer"]
        buffer.mul_(group["momentum"]).add_(grad, alpha=group["lr"])
        p.mul_(1.0 - multiplier * group["weight_decay"]).sub_(buffer)


def create_optimizer(params, hyperparameters, workload):
    return SGDW(params.parameters(), lr=hyperparameters.learning_rate,
                momentum=1.0 - hyperparameters.one_minus_beta1, weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
