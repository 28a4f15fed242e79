"""SGD with EMA momentum whose every step is multiplied by an Exp(1) random scalar (Zhang & Cutkosky,
Random Scaling and Momentum for Non-smooth Non-convex Optimization, ICML 2024).

    m_t = beta * m_{t-1} + (1 - beta) * g_t
    x_t = x_{t-1} - s_t * lr_t * (m_t + wd * x_{t-1}),     s_t ~ Exp(1)   (E[s_t] = 1)

The random scale turns the online-to-non-convex conversion's guarantee into one for SGDM itself;
`scaling="none"` is the paper's unscaled SGDM ablation. The draws come from a torch.Generator
seeded with the trial's seed, so a run (and the reference test) can regenerate them.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer

SCALINGS = ("exponential", "none")


class RandomScaledSGDM(PerParameterOptimizer):
    def __init__(self, params, lr, beta=0.9, weight_decay=0.0, scaling="exponential", seed=0):
        if scaling not in SCALINGS:
            raise ValueError(f"scaling={scaling!r}; valid: {list(SCALINGS)}")
        if not 0.0 <= beta < 1.0 or lr < 0 or weight_decay < 0:
            raise ValueError(f"invalid settings: lr={lr} beta={beta} weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "beta": beta, "weight_decay": weight_decay})
        self.scaling = scaling
        self.generator = torch.Generator().manual_seed(seed)

    def draw_scale(self) -> float:
        if self.scaling == "none":
            return 1.0
        return float(torch.empty((), dtype=torch.float64).exponential_(1.0, generator=self.generator))

    def step(self, closure):
        # one scalar for the whole model, as in the paper; its generator is the optimizer's own, so
        # drawing it before the closure runs changes no draw
        self.scale = self.draw_scale()
        return super().step(closure)

    def update_parameter(self, p, grad, state, group):
        momentum = state.setdefault("momentum", torch.zeros_like(p))
        momentum.mul_(group["beta"]).add_(grad, alpha=1.0 - group["beta"])
        p.add_(momentum + group["weight_decay"] * p, alpha=-self.scale * group["lr"])


def create_optimizer(params, hyperparameters, workload):
    return RandomScaledSGDM(params.parameters(), lr=hyperparameters.learning_rate, beta=hyperparameters.beta,
                            weight_decay=hyperparameters.weight_decay, scaling=hyperparameters.scaling,
                            seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
