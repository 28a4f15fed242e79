"""diffGrad (Dubey et al., "diffGrad: An Optimization Method for Convolutional Neural Networks"):
Adam whose first moment is damped per coordinate by the friction coefficient
xi_t = 1 / (1 + exp(-|g_{t-1} - g_t|)), so steps shrink where the gradient stops changing.
g_0 = 0 as in the official code; weight decay is L2 (added to the gradient) as there.
"""

import math

import torch

from optimlib import schedules
from optimlib.adam import adam_defaults, update_moments
from optimlib.per_parameter import PerParameterOptimizer
from optimlib.hyperparameters import adam_settings


class DiffGrad(PerParameterOptimizer):
    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, adam_defaults("DiffGrad", lr, betas, eps, weight_decay))

    def update_parameter(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        grad = grad.add(p, alpha=group["weight_decay"])
        t = update_moments(grad, state, group["betas"])
        previous_grad = state.setdefault("previous_grad", torch.zeros_like(p))  # g_0 = 0
        friction = torch.sigmoid((previous_grad - grad).abs())
        previous_grad.copy_(grad)
        step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        p.addcdiv_(state["exp_avg"] * friction, state["exp_avg_sq"].sqrt().add_(group["eps"]), value=-step_size)


def create_optimizer(params, hyperparameters, workload):
    return DiffGrad(params.parameters(), **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
