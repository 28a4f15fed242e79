"""Optimistic-AMSGrad (Wang, Li, Karimi, Li: An Optimistic Acceleration of AMSGrad for Nonconvex
Optimization, ACML 2021), Algorithm 2, with the last gradient as the guess of the next one.

Optimistic online learning plays a guess m_{t+1} of the next gradient before it arrives. With
g_t taken at w_t:

    theta_t   = b1 theta_{t-1} + (1 - b1) g_t
    v_t       = b2 v_{t-1} + (1 - b2) (g_t - m_t)^2          (the guess's error, not g^2)
    vhat_t    = max(vhat_{t-1}, v_t),    vhat_0 = eps
    w_{t+1/2} = w_{t-1/2} - lr theta_t / sqrt(vhat_t)         (the AMSGrad sequence)
    w_{t+1}   = w_{t+1/2} - lr h_{t+1} / sqrt(vhat_t),   h_{t+1} = b1 theta_t + (1 - b1) m_{t+1}

m_{t+1} = g_t (m_1 = 0). The paper's experiments extrapolate the guess from the last r gradients
(regularized minimal polynomial extrapolation); that guess is not implemented here. The model
holds w_t (where gradients are taken); w_{t+1/2} is optimizer state.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


class OptimisticAMSGrad(PerParameterOptimizer):
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        if lr < 0 or eps <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Optimistic-AMSGrad settings: lr={lr} betas={betas} eps={eps} (eps must be > 0)")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    def update_parameter(self, p, grad, state, group):
        b1, b2 = group["betas"]
        if not state:
            state["half_iterate"] = p.clone()
            state["momentum"] = torch.zeros_like(p)
            state["second_moment"] = torch.zeros_like(p)
            state["max_second_moment"] = torch.full_like(p, group["eps"])
            state["guess"] = torch.zeros_like(p)
        g, theta, guess = grad, state["momentum"], state["guess"]
        theta.mul_(b1).add_(g, alpha=1.0 - b1)
        state["second_moment"].mul_(b2).addcmul_(g - guess, g - guess, value=1.0 - b2)
        torch.maximum(state["max_second_moment"], state["second_moment"], out=state["max_second_moment"])
        denom = state["max_second_moment"].sqrt()
        state["half_iterate"].addcdiv_(theta, denom, value=-group["lr"])
        guess.copy_(g)
        optimistic_step = theta * b1 + guess * (1.0 - b1)
        p.copy_(state["half_iterate"]).addcdiv_(optimistic_step, denom, value=-group["lr"])


def create_optimizer(params, hyperparameters, workload):
    return OptimisticAMSGrad(params.parameters(), lr=hyperparameters.learning_rate,
                             betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
                             eps=hyperparameters.epsilon)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
