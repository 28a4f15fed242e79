"""Stochastic heavy ball (Polyak momentum) with the multi-stage step-decay schedule of Pan, Liu,
Wang & Zhang, "Accelerated Convergence of Stochastic Heavy Ball Method under Anisotropic Gradient
Noise" (ICLR 2024):  w_{t+1} = w_t - eta_t g_t + beta (w_t - w_{t-1}),  eta_t = eta_0 / C^stage.

The update is kept in the paper's form (the rate multiplies the gradient before it enters the
velocity), so a decay step does not rescale the momentum already built up, unlike torch.optim.SGD.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


class HeavyBall(PerParameterOptimizer):
    def __init__(self, params, lr: float, beta: float, weight_decay: float = 0.0):
        if lr <= 0 or not 0.0 <= beta < 1.0 or weight_decay < 0:
            raise ValueError(f"HeavyBall: need lr > 0, 0 <= beta < 1, weight_decay >= 0; got lr={lr}, "
                             f"beta={beta}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "beta": beta, "weight_decay": weight_decay})

    def update_parameter(self, p, grad, state, group):
        grad = grad.add(p, alpha=group["weight_decay"])
        if not state:
            state["velocity"] = torch.zeros_like(p)  # w_t - w_{t-1}, zero at the start
        velocity = state["velocity"]
        velocity.mul_(group["beta"]).add_(grad, alpha=-group["lr"])
        p.add_(velocity)


def create_optimizer(params, hyperparameters, workload):
    return HeavyBall(params.parameters(), lr=hyperparameters.learning_rate,
                     beta=1.0 - hyperparameters.one_minus_beta, weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    horizon = max(1, round(hyperparameters.step_hint_factor * step_hint))
    return schedules.step_decay(step, horizon, hyperparameters.decay_factor)
