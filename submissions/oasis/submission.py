"""OASIS (Jahani, Rusakov, Shi, Richtarik, Mahoney & Takac, Doubly Adaptive Scaled Algorithm for
Machine Learning Using Second-Order Information, ICLR 2022), Algorithm 1.

A diagonal Hessian estimate from Hutchinson's z * (H z) (z Rademacher, from a seeded generator),
averaged with beta2 and truncated below at alpha, scales the gradient; the step size adapts to
the local smoothness measured in the same metric:

    D_k = beta2 * D_{k-1} + (1 - beta2) * z_k * (H_k z_k)          (D_0 = z_0 * (H_0 z_0))
    Dhat_k = max(|D_k|, alpha)
    eta_k = min( sqrt(1 + theta_{k-1}) * eta_{k-1},
                 ||w_k - w_{k-1}||_{Dhat_k} / (2 ||g(w_k) - g(w_{k-1})||*_{Dhat_k}) )    (eta_0 = lr, theta_0 = inf)
    w_{k+1} = w_k - eta_k * Dhat_k^-1 g(w_k);   theta_k = eta_k / eta_{k-1}

with ||x||_D^2 = x^T D x and ||x||*_D^2 = x^T D^-1 x. Both gradients in the ratio are taken on
the current batch (one extra gradient at w_{k-1}, as in the paper's stochastic OASIS).
With `adaptive_lr = false` eta_k is the scheduled learning rate (the paper's fixed-step OASIS).
"""

import math

import torch

from optimlib import schedules


class OASIS(torch.optim.Optimizer):
    def __init__(self, params, lr, beta2=0.99, alpha=1e-5, adaptive_lr=True, seed=0):
        if lr <= 0 or alpha <= 0 or not 0 <= beta2 < 1:
            raise ValueError(f"invalid OASIS settings: lr={lr} beta2={beta2} alpha={alpha}")
        super().__init__(params, {"lr": lr})
        self.beta2, self.alpha, self.adaptive_lr = beta2, alpha, adaptive_lr
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0
        self.eta, self.theta = lr, math.inf

    def hutchinson(self, params, grads_with_graph):
        """z * (H z) for one Rademacher z per parameter."""
        zs = [(torch.randint(0, 2, p.shape, generator=self.generator) * 2 - 1).to(p.dtype).to(p.device)
              for p in params]
        hessian_z = torch.autograd.grad(grads_with_graph, params, grad_outputs=zs)
        return [z * hz for z, hz in zip(zs, hessian_z)]

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure(create_graph=True)
            params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
            samples = self.hutchinson(params, [p.grad for p in params])
        grads = [p.grad.detach().clone() for p in params]
        for p in params:
            p.grad = None  # drop the graph
        first = self.steps == 0
        self.steps += 1
        diagonals = []
        for p, sample in zip(params, samples):
            state = self.state[p]
            if first:
                state["hessian_diagonal"] = sample.clone()
            else:
                state["hessian_diagonal"].mul_(self.beta2).add_(sample, alpha=1.0 - self.beta2)
            diagonals.append(state["hessian_diagonal"].abs().clamp(min=self.alpha))
        eta = self.param_groups[0]["lr"]
        if self.adaptive_lr and not first:
            eta = self.adaptive_step(closure, params, grads, diagonals)
        for p, g, d in zip(params, grads, diagonals):
            self.state[p]["previous_weight"] = p.detach().clone()
            p.sub_(g / d, alpha=eta)
        return loss.detach()

    def adaptive_step(self, closure, params, grads, diagonals) -> float:
        """eta_k from the smoothness between w_{k-1} and w_k on this batch (one more gradient)."""
        current = [p.detach().clone() for p in params]
        for p in params:
            p.copy_(self.state[p]["previous_weight"])
        with torch.enable_grad():
            closure()
        weight_distance = sum(float(((c - self.state[p]["previous_weight"]).square() * d).sum())
                              for p, c, d in zip(params, current, diagonals))
        grad_distance = sum(float(((g - p.grad).square() / d).sum()) for p, g, d in zip(params, grads, diagonals))
        for p, c in zip(params, current):
            p.copy_(c)
        growth = math.sqrt(1.0 + self.theta) * self.eta
        smoothness = 0.5 * math.sqrt(weight_distance / grad_distance) if grad_distance > 0 else math.inf
        eta = min(growth, smoothness)
        eta = self.eta if math.isinf(eta) else eta
        self.theta, self.eta = eta / self.eta, eta
        return eta


def create_optimizer(params, hyperparameters, workload):
    return OASIS(params.parameters(), lr=hyperparameters.learning_rate, beta2=hyperparameters.beta2,
                 alpha=hyperparameters.alpha, adaptive_lr=hyperparameters.adaptive_lr, seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    if hyperparameters.adaptive_lr:
        return schedules.constant(step, step_hint)
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
