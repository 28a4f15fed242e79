"""The `step(closure)` skeleton shared by optimizers that update each parameter on its own."""

from __future__ import annotations

import torch


class PerParameterOptimizer(torch.optim.Optimizer):
    """`step(closure)` evaluates the closure once (with gradients on), then calls
    `update_parameter(p, grad, state, group)` for every parameter that got a gradient, in
    parameter-group order. Subclasses write only the update rule of one tensor."""

    def update_parameter(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update_parameter(p, p.grad, self.state[p], group)
        return loss
