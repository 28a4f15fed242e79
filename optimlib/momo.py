"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning
Rates"): momentum SGD whose step size comes from a model of the loss built from averaged losses,
gradients and <gradient, weight> products, truncated at a lower bound f* of the loss:
  d = b d + (1-b) g,  fbar = b fbar + (1-b) f,  gamma = b gamma + (1-b) <g, x>
  tau = min(lr / rho, ((1 + lr wd)(fbar - rho f*) + <d, x> - (1 + lr wd) gamma)_+ / ||d||^2_{D^-1})
  x <- (x - tau D^-1 d) / (1 + lr wd)
D = 1 for MoMo; MoMo-Adam (`adam_beta2` set) uses Adam's preconditioner
D = sqrt(v / (1 - b2^k)) + eps. Without bias correction the averages start at the first values and
rho = 1; with it they start at zero and rho = 1 - b^k. When f* is unknown, `estimate_lower_bound`
runs the paper's online estimate (reset to half the model's value when that falls below f*, then
f* <- (fbar + <d, x> - gamma - tau ||d||^2 / 2) / rho), never below the initial `lower_bound`.
Shared by the `momo` and `momo_adam` submissions.
"""

from __future__ import annotations

import torch

from optimlib.adam import bias_corrected_denominator


class Momo(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1.0, beta: float = 0.9, weight_decay: float = 0.0,
                 lower_bound: float = 0.0, estimate_lower_bound: bool = False, bias_correction: bool = False,
                 adam_beta2: float | None = None, eps: float = 1e-8):
        if lr <= 0 or not 0.0 <= beta < 1.0 or weight_decay < 0 or (adam_beta2 is not None and not 0 <= adam_beta2 < 1):
            raise ValueError(f"Momo: invalid lr={lr}, beta={beta}, weight_decay={weight_decay}, adam_beta2={adam_beta2}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        if len(self.param_groups) != 1:
            raise ValueError("Momo's step size is one number for the whole model: pass a single parameter group")
        self.beta, self.adam_beta2, self.eps = beta, adam_beta2, eps
        self.bias_correction = bias_correction or adam_beta2 is not None  # MoMo-Adam is bias-corrected
        self.estimate_lower_bound = estimate_lower_bound
        self.initial_lower_bound = self.lower_bound = lower_bound
        self.steps = 0
        self.loss_avg = 0.0

    def _preconditioner(self, state) -> torch.Tensor | float:
        if self.adam_beta2 is None:
            return 1.0
        return bias_corrected_denominator(state["exp_avg_sq"], self.adam_beta2, self.steps, self.eps)

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = float(closure())
        self.steps += 1
        beta, first = self.beta, self.steps == 1 and not self.bias_correction
        rho = 1 - beta**self.steps if self.bias_correction else 1.0
        self.loss_avg = loss if first else beta * self.loss_avg + (1 - beta) * loss
        group = self.param_groups[0]
        lr, decay = group["lr"], 1 + group["lr"] * group["weight_decay"]
        dot = gamma = norm = 0.0
        for p in group["params"]:
            if p.grad is None:
                continue
            grad, state = p.grad, self.state[p]
            grad_dot_w = float((grad * p).sum())
            if not state:
                state.update(grad_avg=grad.clone() if first else torch.zeros_like(p),
                             grad_dot_w=grad_dot_w if first else 0.0)
                if self.adam_beta2 is not None:
                    state["exp_avg_sq"] = torch.zeros_like(p)
            state["grad_avg"].mul_(beta).add_(grad, alpha=1 - beta)
            state["grad_dot_w"] = beta * state["grad_dot_w"] + (1 - beta) * grad_dot_w
            if self.adam_beta2 is not None:
                state["exp_avg_sq"].mul_(self.adam_beta2).addcmul_(grad, grad, value=1 - self.adam_beta2)
            d = state["grad_avg"]
            dot += float((d * p).sum())
            gamma += state["grad_dot_w"]
            norm += float((d * d / self._preconditioner(state)).sum())
        if self.estimate_lower_bound:
            cap = decay * self.loss_avg + dot - decay * gamma
            if cap < decay * rho * self.lower_bound:  # the model dips below f*: the bound was too high
                self.lower_bound = max(cap / (2 * decay * rho), self.initial_lower_bound)
        model_gap = decay * (self.loss_avg - rho * self.lower_bound) + dot - decay * gamma
        tau = min(lr / rho, max(model_gap, 0.0) / norm) if norm > 0 else 0.0
        if self.estimate_lower_bound:
            model_value = self.loss_avg + dot - gamma
            self.lower_bound = max((model_value - 0.5 * tau * norm) / rho, self.initial_lower_bound)
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            p.sub_(tau * state["grad_avg"] / self._preconditioner(state)).div_(decay)
        return torch.tensor(loss)
