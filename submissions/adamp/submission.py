"""AdamP (Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
Weights"): Adam whose update loses its radial part on scale-invariant weights (a weight of two or
more dimensions whose gradient is nearly orthogonal to it, in the channel or the layer view), with
weight decay scaled by `wd_ratio` there. The projection is optimlib/scale_invariant.py's, shared
with SGDP (submissions/sgdp).
"""

from optimlib import schedules
from optimlib.adam import bias_corrected_denominator, update_moments
from optimlib.per_parameter import PerParameterOptimizer
from optimlib.scale_invariant import project_scale_invariant
from optimlib.hyperparameters import adam_settings


class AdamP(PerParameterOptimizer):
    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 delta: float = 0.1, wd_ratio: float = 0.1, nesterov: bool = False):
        if lr <= 0 or eps < 0 or weight_decay < 0 or delta < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamP: invalid lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}, "
                             f"delta={delta}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "delta": delta, "wd_ratio": wd_ratio, "nesterov": nesterov})

    def update_parameter(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        t = update_moments(grad, state, group["betas"])
        denom = bias_corrected_denominator(state["exp_avg_sq"], beta2, t, group["eps"])
        m = state["exp_avg"]
        momentum = beta1 * m + (1 - beta1) * grad if group["nesterov"] else m
        update, decay_scale = momentum / denom, 1.0
        if p.dim() > 1:
            update, decay_scale = project_scale_invariant(p, grad, update, group["delta"],
                                                          group["wd_ratio"], group["eps"])
        p.mul_(1 - group["lr"] * group["weight_decay"] * decay_scale)
        p.add_(update, alpha=-group["lr"] / (1 - beta1**t))


def create_optimizer(params, hyperparameters, workload):
    return AdamP(params.parameters(), delta=hyperparameters.delta, wd_ratio=hyperparameters.wd_ratio,
                 nesterov=bool(hyperparameters.nesterov), **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
