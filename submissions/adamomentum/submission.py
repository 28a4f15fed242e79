"""AdaMomentum (Wang et al., "Rethinking Adam: A Twofold Exponential Moving Average Approach"):
Adam whose second moment averages the squared *momentum* instead of the squared gradient,
  m_t = b1 m + (1-b1) g,  v_t = b2 v + (1-b2) m_t^2 + eps,  x -= lr (m_t/(1-b1^t)) / (sqrt(v_t/(1-b2^t)) + eps),
with eps inside the second moment as in the paper's Algorithm 1 and decoupled weight decay (AdamW form).
"""


import torch

from optimlib import schedules
from optimlib.adam import adam_defaults, bias_corrected_denominator
from optimlib.per_parameter import PerParameterOptimizer
from optimlib.hyperparameters import adam_settings


class AdaMomentum(PerParameterOptimizer):
    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, adam_defaults("AdaMomentum", lr, betas, eps, weight_decay))

    def update_parameter(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, eps = group["lr"], group["eps"]
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_momentum_sq=torch.zeros_like(p))
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_momentum_sq"]
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(m, m, value=1 - beta2).add_(eps)
        p.mul_(1 - lr * group["weight_decay"])
        p.addcdiv_(m, bias_corrected_denominator(v, beta2, t, eps), value=-lr / (1 - beta1**t))


def create_optimizer(params, hyperparameters, workload):
    return AdaMomentum(params.parameters(), **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
