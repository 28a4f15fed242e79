"""SGDP (Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
Weights"): SGD with momentum whose update loses its radial part on scale-invariant weights, with
weight decay scaled by wd_ratio there (projection shared with AdamP). As in the official code the
decoupled decay is divided by (1 - momentum), matching the momentum's effective step. The
projection is optimlib/scale_invariant.py's.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer
from optimlib.scale_invariant import project_scale_invariant


class SGDP(PerParameterOptimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = False,
                 eps: float = 1e-8, delta: float = 0.1, wd_ratio: float = 0.1):
        if lr <= 0 or not 0.0 <= momentum < 1.0 or weight_decay < 0 or delta < 0:
            raise ValueError(f"SGDP: invalid lr={lr}, momentum={momentum}, weight_decay={weight_decay}, delta={delta}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                  "nesterov": nesterov, "eps": eps, "delta": delta, "wd_ratio": wd_ratio})

    def update_parameter(self, p, grad, state, group):
        momentum = group["momentum"]
        if not state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buffer = state["momentum_buffer"].mul_(momentum).add_(grad)
        update, decay_scale = (grad + momentum * buffer if group["nesterov"] else buffer.clone()), 1.0
        if p.dim() > 1:
            update, decay_scale = project_scale_invariant(p, grad, update, group["delta"],
                                                      group["wd_ratio"], group["eps"])
        p.mul_(1 - group["lr"] * group["weight_decay"] * decay_scale / (1 - momentum))
        p.add_(update, alpha=-group["lr"])


def create_optimizer(params, hyperparameters, workload):
    return SGDP(params.parameters(), lr=hyperparameters.learning_rate,
                momentum=1.0 - hyperparameters.one_minus_beta1, weight_decay=hyperparameters.weight_decay,
                nesterov=bool(hyperparameters.nesterov), eps=hyperparameters.epsilon,
                delta=hyperparameters.delta, wd_ratio=hyperparameters.wd_ratio)


def schedule(step, step_hint, hyperparameters):
    """As `adamp`: warm-up + cosine over step_hint_factor * step_hint."""
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
