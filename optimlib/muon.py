"""Muon (Jordan et al., 2024): momentum whose update for each matrix (a weight of two or more
dimensions, flattened to out x rest) is orthogonalised by Newton-Schulz iterations, and AdamW for
every other parameter:

  B <- mu B + G,  U = G + mu B (Nesterov) or B,  O = NS(U / ||U||_F),  W <- W (1 - lr wd) - lr s O,
  s = sqrt(max(1, A / B)) with A x B the parameter's last two dimensions.

s follows the reference implementation (KellerJordan/Muon, `muon_update`): its factor
`max(1, grad.size(-2) / grad.size(-1))**0.5` is taken from the parameter's own shape, not from the
flattened matrix, so a 4-D conv kernel (out, in, kh, kw) gets sqrt(max(1, kh / kw)), 1 for a square
kernel, while a matrix gets sqrt(max(1, rows / cols)). (torch.optim.Muon takes 2-D parameters only.)
Shared by the `muon` and `turbo_muon` submissions (the latter with AOL preconditioning).
"""

from __future__ import annotations

import math

import torch

from optimlib.adam import adam_direction
from optimlib.newton_schulz import MUON_NS_COEFFICIENTS, orthogonalize
from optimlib.per_parameter import PerParameterOptimizer


def update_scale(shape: torch.Size) -> float:
    """The reference's sqrt(max(1, A / B)) for a parameter whose last two dimensions are A x B."""
    return math.sqrt(max(1.0, shape[-2] / shape[-1]))


class Muon(PerParameterOptimizer):
    """Orthogonalised momentum for matrices (group "muon"), AdamW for the rest (group "adamw")."""

    def __init__(self, model: torch.nn.Module, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, adam_lr: float = 3e-4, adam_betas=(0.9, 0.95), adam_eps: float = 1e-10,
                 coefficients=MUON_NS_COEFFICIENTS, aol_preconditioning: bool = False):
        if lr <= 0 or adam_lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"Muon: invalid lr={lr}, adam_lr={adam_lr}, momentum={momentum}, weight_decay={weight_decay}")
        params = list(model.parameters())
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "lr": lr, "use_muon": True},
            {"params": [p for p in params if p.dim() < 2], "lr": adam_lr, "use_muon": False},
        ]
        super().__init__([g for g in groups if g["params"]], {
            "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay, "betas": adam_betas,
            "eps": adam_eps})
        self.coefficients, self.aol_preconditioning = tuple(coefficients), aol_preconditioning

    def update_parameter(self, p, grad, state, group):
        direction = (self._muon_update(p, grad, state, group) if group["use_muon"]
                     else adam_direction(grad, state, group["betas"], group["eps"]))
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.sub_(direction, alpha=group["lr"])

    def _muon_update(self, p, grad, state, group):
        if not state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buffer = state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
        direction = grad + group["momentum"] * buffer if group["nesterov"] else buffer
        orthogonal = orthogonalize(direction.reshape(p.shape[0], -1), self.coefficients, self.aol_preconditioning)
        return orthogonal.reshape(p.shape) * update_scale(p.shape)


def muon_from_hyperparameters(model, hyperparameters, **orthogonalization) -> Muon:
    """Muon from the muon/turbo_muon search-space names; `orthogonalization`: coefficients, aol_preconditioning."""
    return Muon(model, lr=hyperparameters.learning_rate, momentum=1.0 - hyperparameters.one_minus_momentum,
                nesterov=bool(hyperparameters.nesterov), weight_decay=hyperparameters.weight_decay,
                adam_lr=hyperparameters.adam_learning_rate,
                adam_betas=(1.0 - hyperparameters.adam_one_minus_beta1, hyperparameters.adam_beta2),
                adam_eps=hyperparameters.adam_epsilon, **orthogonalization)
