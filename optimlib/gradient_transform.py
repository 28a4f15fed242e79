"""A wrapper that changes each parameter's gradient in place before a base optimizer steps on it
(per-tensor clipping, orthogonal-gradient projection, ...)."""

from __future__ import annotations

from typing import Callable

import torch

from optimlib.per_parameter import PerParameterOptimizer


class GradientTransformOptimizer(PerParameterOptimizer):
    """`step(closure)` evaluates the closure, applies `transform_(p)` (which rewrites `p.grad`) to
    every parameter with a gradient, then steps `base`. Param groups and state are the base's, so a
    schedule that sets `lr` on this optimizer's groups sets the base's."""

    def __init__(self, base: torch.optim.Optimizer, transform_: Callable[[torch.Tensor], None]):
        super().__init__([p for group in base.param_groups for p in group["params"]], {})
        self.base, self.transform_ = base, transform_
        self.param_groups = base.param_groups
        self.state = base.state

    def update_parameter(self, p, grad, state, group):
        self.transform_(p)

    @torch.no_grad()
    def step(self, closure):
        loss = super().step(closure)
        self.base.step()
        return loss

    def load_state_dict(self, state_dict):
        """Resume into the base, then alias its (reloaded) groups and state again: Optimizer's own
        load would rebind them on the wrapper only, leaving the base stepping on fresh state."""
        self.base.load_state_dict(state_dict)
        self.param_groups, self.state = self.base.param_groups, self.base.state
