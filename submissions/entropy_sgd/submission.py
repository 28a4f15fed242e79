"""Entropy-SGD (Chaudhari et al., Entropy-SGD: Biasing Gradient Descent Into Wide Valleys, ICLR 2017):
descend the local entropy, whose gradient gamma * (x - mu) comes from an SGLD chain around x.

Per step (Algorithm 1), with gamma_t = gamma * (1 + scoping)^t ("scoping": the valley narrows):

    x', mu <- x
    repeat L times:   x' <- x' - eta' * (grad f(x') - gamma_t * (x - x')) + sqrt(eta') * noise * N(0, I)
                      mu <- (1 - alpha) * mu + alpha * x'
    x <- x - lr * gamma_t * (x - mu)

Every SGLD step re-evaluates the step's batch (the harness hands one batch per step). The
Gaussian draws come from a torch.Generator seeded with the trial's seed.
"""

import math

import torch

from optimlib import schedules


class EntropySGD(torch.optim.Optimizer):
    def __init__(self, params, lr, langevin_steps=20, langevin_lr=0.1, gamma=0.03, scoping=1e-3, noise=1e-4,
                 alpha=0.75, seed=0):
        if langevin_steps < 1 or langevin_lr <= 0 or gamma <= 0 or not 0 < alpha <= 1:
            raise ValueError(f"invalid Entropy-SGD settings: langevin_steps={langevin_steps} "
                             f"langevin_lr={langevin_lr} gamma={gamma} alpha={alpha}")
        super().__init__(params, {"lr": lr})
        self.langevin_steps, self.langevin_lr, self.alpha = langevin_steps, langevin_lr, alpha
        self.gamma, self.scoping, self.noise = gamma, scoping, noise
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    @torch.no_grad()
    def step(self, closure):
        gamma = self.gamma * (1.0 + self.scoping) ** self.steps
        self.steps += 1
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        anchors = [p.clone() for p in params]  # x; the parameters themselves walk as x'
        means = [p.clone() for p in params]  # mu
        first_loss = None
        for _ in range(self.langevin_steps):
            with torch.enable_grad():
                loss = closure()
            first_loss = loss if first_loss is None else first_loss
            for p, x, mu in zip(params, anchors, means):
                grad = p.grad if p.grad is not None else torch.zeros_like(p)
                noise = torch.randn(p.shape, generator=self.generator, dtype=p.dtype).to(p.device)
                p.sub_(self.langevin_lr * (grad - gamma * (x - p)))
                p.add_(noise, alpha=math.sqrt(self.langevin_lr) * self.noise)
                mu.mul_(1.0 - self.alpha).add_(p, alpha=self.alpha)
        lr = self.param_groups[0]["lr"]
        for p, x, mu in zip(params, anchors, means):
            p.copy_(x - lr * gamma * (x - mu))
        return first_loss


def create_optimizer(params, hyperparameters, workload):
    return EntropySGD(params.parameters(), lr=hyperparameters.learning_rate,
                      langevin_steps=hyperparameters.langevin_steps, langevin_lr=hyperparameters.langevin_lr,
                      gamma=hyperparameters.gamma, scoping=hyperparameters.scoping, noise=hyperparameters.noise,
                      alpha=hyperparameters.alpha, seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
