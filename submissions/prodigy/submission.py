"""Prodigy (Mishchenko & Defazio, Prodigy: An Expeditiously Adaptive Parameter-Free Learner),
the Adam form (Algorithm 3 of the paper), with decoupled weight decay and warm-up + cosine decay
of the multiplier lr_k (the paper pairs Prodigy with cosine annealing; its lr stays 1).

    m   = b1 m + (1 - b1) d g
    v   = b2 v + (1 - b2) d^2 g^2
    r   = sqrt(b2) r + (1 - sqrt(b2)) lr_k d^2 <g, x0 - x>
    s   = sqrt(b2) s + (1 - sqrt(b2)) lr_k d^2 g
    d  <- max(d, r / ||s||_1)                       (used from the next step on)
    x  -= lr_k d (m / (sqrt(v) + d eps) + wd x)

d starts at d0 = 1e-6, a deliberate underestimate of the distance to the solution. r and s are
stored divided by d0 (as the official code does) so they stay in float32 range; their ratio is
unchanged. All parameter groups share one d.
"""

import math

import torch

from optimlib import schedules


class Prodigy(torch.optim.Optimizer):
    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, d0=1e-6):
        if lr <= 0 or eps < 0 or weight_decay < 0 or d0 <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Prodigy settings: lr={lr} betas={betas} eps={eps} "
                             f"weight_decay={weight_decay} d0={d0}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.d0 = d0
        self.d = d0
        self.r_over_d0 = 0.0

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        d = self.d
        self.r_over_d0 = self.r_over_d0 * math.sqrt(self.param_groups[0]["betas"][1])
        s_norm_over_d0 = 0.0
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            beta3 = math.sqrt(beta2)
            scale = (1.0 - beta3) * group["lr"] * d * d / self.d0
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state.update(x0=p.clone(), s_over_d0=torch.zeros_like(p),
                                 exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                # tensors, not floats: no device synchronisation per parameter
                self.r_over_d0 = self.r_over_d0 + scale * torch.dot(g.flatten(), (state["x0"] - p).flatten())
                state["s_over_d0"].mul_(beta3).add_(g, alpha=scale)
                s_norm_over_d0 = s_norm_over_d0 + state["s_over_d0"].abs().sum()
                state["exp_avg"].mul_(beta1).add_(g, alpha=d * (1.0 - beta1))
                state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=d * d * (1.0 - beta2))
        for group in self.param_groups:
            step_size = group["lr"] * d
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                denom = state["exp_avg_sq"].sqrt().add_(d * group["eps"])
                p.sub_(p, alpha=step_size * group["weight_decay"])
                p.addcdiv_(state["exp_avg"], denom, value=-step_size)
        if float(s_norm_over_d0) > 0:  # d is a Python float: one synchronisation per step
            self.d = max(d, float(self.r_over_d0 / s_norm_over_d0))
        return loss


def create_optimizer(params, hyperparameters, workload):
    return Prodigy(params.parameters(), lr=hyperparameters.learning_rate,
                   betas=(hyperparameters.beta1, hyperparameters.beta2), eps=hyperparameters.epsilon,
                   weight_decay=hyperparameters.weight_decay, d0=hyperparameters.d0)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
