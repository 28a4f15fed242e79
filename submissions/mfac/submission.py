"""M-FAC (Frantar, Kurtic & Alistarh, M-FAC: Efficient Matrix-Free Approximations of Second-Order
Information, NeurIPS 2021): precondition with the inverse of the dampened empirical Fisher of the
last m gradients,

    F = damp * I + (1/m) * sum_{i=1..m} g_i g_i^T          (a ring buffer of m gradients, zeros at first)
    u = F^{-1} (g + wd * w);   v = mu * v + (1 - mu) * u   (mu = 0: no momentum);   w <- w - lr * v

F^{-1} x is applied matrix-free through the Woodbury identity,
F^{-1} x = (x - G^T (m*damp*I + G G^T)^{-1} G x) / damp, with G the m x d window and G G^T
kept up to date one row per step, the same product the paper's dynamic algorithm computes.
Memory: m copies of the flattened gradient, so m is kept small on large models.
"""

import torch

from optimlib import schedules


class MFAC(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, ngrads=64, damp=1e-5):
        if ngrads < 1 or damp <= 0 or not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid M-FAC settings: ngrads={ngrads} damp={damp} momentum={momentum}")
        super().__init__(params, {"lr": lr})
        self.momentum, self.weight_decay, self.ngrads, self.damp = momentum, weight_decay, ngrads, damp
        self.window: torch.Tensor | None = None  # G, ngrads x d
        self.dots: torch.Tensor | None = None  # G G^T
        self.last = 0
        self.velocity: torch.Tensor | None = None

    def params_with_grad(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    def inverse_fisher_times(self, g: torch.Tensor) -> torch.Tensor:
        """Push g into the window (dropping the oldest gradient) and return F^{-1} g."""
        if self.window is None:
            self.window = g.new_zeros(self.ngrads, g.numel())
            self.dots = g.new_zeros(self.ngrads, self.ngrads)
        self.window[self.last] = g
        products = self.window @ g  # G g; its entry `last` is g.g
        self.dots[self.last, :] = products
        self.dots[:, self.last] = products
        self.last = (self.last + 1) % self.ngrads
        system = self.dots + self.ngrads * self.damp * torch.eye(self.ngrads, dtype=g.dtype, device=g.device)
        coefficients = torch.linalg.solve(system, products)
        return (g - self.window.T @ coefficients) / self.damp

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = self.params_with_grad()
        g = torch.cat([(p.grad + self.weight_decay * p).reshape(-1) for p in params])
        direction = self.inverse_fisher_times(g)
        if self.momentum > 0:
            if self.velocity is None:
                self.velocity = torch.zeros_like(direction)
            direction = self.velocity.mul_(self.momentum).add_(direction, alpha=1.0 - self.momentum)
        lr = self.param_groups[0]["lr"]
        offset = 0
        for p in params:
            p.add_(direction[offset:offset + p.numel()].reshape(p.shape), alpha=-lr)
            offset += p.numel()
        return loss


def create_optimizer(params, hyperparameters, workload):
    return MFAC(params.parameters(), lr=hyperparameters.learning_rate, momentum=hyperparameters.momentum,
                weight_decay=hyperparameters.weight_decay, ngrads=hyperparameters.ngrads, damp=hyperparameters.damp)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
