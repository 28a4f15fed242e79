"""clipped-SGD (Sadiev, Danilova, Gorbunov, Horvath, Gidel, Dvurechensky, Gasnikov, Richtarik: High-Probability
Bounds for Stochastic Optimization and Variational Inequalities: the Case of Unbounded Variance, ICML 2023).

    x_{k+1} = x_k - gamma_k clip(g_k, lambda),      clip(g, lambda) = min(1, lambda / ||g||) g

with the norm over the whole model (one stochastic gradient of the whole objective). Clipping at a
level that does not shrink with the noise is what gives the high-probability (log 1/delta)
bounds when only a central moment of order alpha in (1, 2] is bounded. gamma_k follows
timetrial's warm-up + cosine schedule.
"""

import torch

from optimlib import schedules


def clip_by_global_norm_(grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale `grads` in place so their joint l2 norm is at most `max_norm`."""
    norm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)


class ClippedSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, clip_level):
        if lr < 0 or clip_level <= 0:
            raise ValueError(f"invalid clipped-SGD settings: lr={lr} clip_level={clip_level} "
                             "(need lr >= 0, clip_level > 0)")
        super().__init__(params, {"lr": lr})
        self.clip_level = clip_level

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        clip_by_global_norm_([p.grad for p in params], self.clip_level)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


def create_optimizer(params, hyperparameters, workload):
    return ClippedSGD(params.parameters(), lr=hyperparameters.learning_rate, clip_level=hyperparameters.clip_level)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
