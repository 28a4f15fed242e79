"""PSGD with a dense Lie-group preconditioner (Xi-Lin Li, Stochastic Hessian Fitting on Lie Group;
Pooladzandi & Li, Curvature-Informed SGD via General Purpose Lie-Group Preconditioners, 2024).

The preconditioner P = Q^T Q, with Q upper triangular (a Lie group under multiplication), is
fitted online to the Hessian by minimising E[h^T P h + v^T P^-1 v] with v ~ N(0, I) and h = H v
(a Hessian-vector product); at its minimum P = |H|^-1. One step on the group per iteration:

    a = Q h,   b = Q^-T v
    Q <- Q - mu / ||a a^T - b b^T||_2 * triu(a a^T - b b^T) Q        (normalised step on the group)

(Q_0 = (v^T v / h^T h)^(1/4) I from the first pair.) Dividing by the norm of the fitting gradient is
psgd_torch's first-order step normaliser, for which its default mu is 0.01. The parameters then move
along the preconditioned momentum: m = beta m + (1 - beta) g, w <- w - lr * Q^T Q m.

Q is dense over all parameters (d x d), so this is the convex suite's PSGD; the Kronecker-factored
form the papers use for deep networks is not implemented, and larger models are refused.
v comes from a torch.Generator seeded with the trial's seed.
"""

import torch

from harness.core.spec import UnsupportedWorkloadError
from optimlib import schedules


def spectral_norm_of_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a a^T - b b^T||_2 in closed form: its two nonzero eigenvalues solve a 2 x 2 problem."""
    aa, bb, ab = float(a @ a), float(b @ b), float(a @ b)
    return 0.5 * (abs(aa - bb) + max(0.0, (aa + bb) ** 2 - 4.0 * ab**2) ** 0.5)


class DensePSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, beta=0.9, preconditioner_lr=0.01, max_params=4096, seed=0):
        params = list(params)
        size = sum(p.numel() for p in params)
        if size > max_params:
            raise UnsupportedWorkloadError(
                f"dense PSGD keeps a {size} x {size} preconditioner; this model has {size} parameters "
                f"> max_params={max_params}")
        super().__init__(params, {"lr": lr})
        self.beta, self.preconditioner_lr = beta, preconditioner_lr
        self.generator = torch.Generator().manual_seed(seed)
        self.Q: torch.Tensor | None = None
        self.momentum: torch.Tensor | None = None

    def fit_preconditioner(self, v: torch.Tensor, h: torch.Tensor) -> None:
        if self.Q is None:
            scale = (float(v @ v) / float(h @ h)) ** 0.25
            self.Q = scale * torch.eye(len(v), dtype=v.dtype, device=v.device)
        a = self.Q @ h
        b = torch.linalg.solve_triangular(self.Q.T, v[:, None], upper=False).squeeze(1)
        norm = spectral_norm_of_difference(a, b)
        if norm > 0:
            gradient = torch.triu(torch.outer(a, a) - torch.outer(b, b))
            self.Q -= self.preconditioner_lr / norm * gradient @ self.Q

    @torch.no_grad()
    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"]]
        with torch.enable_grad():
            loss = closure(create_graph=True)
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            vs = [torch.randn(p.shape, generator=self.generator, dtype=p.dtype).to(p.device) for p in params]
            hvs = torch.autograd.grad(grads, params, grad_outputs=vs, allow_unused=True)
        g = torch.cat([grad.detach().reshape(-1) for grad in grads])
        v = torch.cat([x.reshape(-1) for x in vs])
        h = torch.cat([(x if x is not None else torch.zeros_like(p)).reshape(-1) for x, p in zip(hvs, params)])
        for p in params:
            p.grad = None  # drop the graph
        self.fit_preconditioner(v, h)
        self.momentum = g.clone() * (1 - self.beta) if self.momentum is None else (
            self.momentum.mul_(self.beta).add_(g, alpha=1 - self.beta))
        direction = self.Q.T @ (self.Q @ self.momentum)
        lr, offset = self.param_groups[0]["lr"], 0
        for p in params:
            p.sub_(direction[offset:offset + p.numel()].reshape(p.shape), alpha=lr)
            offset += p.numel()
        return loss.detach()


def create_optimizer(params, hyperparameters, workload):
    return DensePSGD(params.parameters(), lr=hyperparameters.learning_rate, beta=hyperparameters.beta,
                     preconditioner_lr=hyperparameters.preconditioner_lr, max_params=hyperparameters.max_params,
                     seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
