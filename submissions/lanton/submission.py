"""LANTON (Hao, Gong, Xu, Wang & Liu, "Noise-Adaptive Layerwise Learning Rates: Accelerating
Geometry-Aware Optimization for Deep Neural Network Training", arXiv 2510.14009, 2025).

The base is a geometry-aware (LMO) optimizer in the D-Muon / Scion design the paper builds on: each
parameter group has a norm, and a layer moves along the linear minimization oracle of that norm
applied to its momentum. LANTON keeps one base learning rate per group but gives every layer
(tensor) l of the group its own time-varying rate, set from a running estimate of the layer's
gradient noise measured in the dual norm of the group's norm:

    B_l <- beta1 B_l + (1 - beta1) G_l                                 (momentum)
    H_l <- beta2 H_l + (1 - beta2) ||G_l - G_l^prev||_*^2              (noise estimate, dual norm)
    eta_l = eta_group * sqrt((min_{j in group} H_j + eps) / (H_l + eps))   (<= eta_group)
    X_l <- X_l (1 - eta_l wd) + eta_l LMO(B_l)

Groups (norm -> LMO, dual norm):
  matrix     weights of 2+ dimensions (flattened out x rest), RMS->RMS operator norm:
             LMO(B) = -sqrt(d_out/d_in) U V^T (Newton-Schulz, as Muon), dual ||G||_* = sqrt(d_in/d_out) ||G||_nuclear
  embedding  nn.Embedding tables (GPT-2's tied LM head included), l1->l_inf operator norm:
             LMO(B) = -sign(B), dual ||G||_* = sum |G_ij|
  vector     1-D parameters (biases, norm gains): AdamW with its own rate, no layerwise scaling (D-Muon).

The noise estimate uses the difference of two consecutive stochastic gradients of a layer (the
harness gives one mini-batch per step, so a second independent gradient at the same point would
double the cost); the first step, before any difference exists, uses the group rate for every layer.
"""

import math

import torch

from optimlib import schedules
from optimlib.adam import adam_direction
from optimlib.newton_schulz import MUON_NS_COEFFICIENTS, orthogonalize

GEOMETRIES = ("matrix", "embedding")


def dual_norm(difference: torch.Tensor, geometry: str) -> torch.Tensor:
    """The dual norm of `difference` (a matrix for "matrix", any shape for "embedding")."""
    if geometry == "matrix":
        d_out, d_in = difference.shape
        return math.sqrt(d_in / d_out) * torch.linalg.matrix_norm(difference, ord="nuc")
    return difference.abs().sum()


def lmo_direction(momentum: torch.Tensor, geometry: str, coefficients) -> torch.Tensor:
    """-LMO(momentum) of the unit ball of the group's norm (the step is X <- X - eta * this)."""
    if geometry == "matrix":
        d_out, d_in = momentum.shape
        return math.sqrt(d_out / d_in) * orthogonalize(momentum, coefficients)
    return momentum.sign()


class Lanton(torch.optim.Optimizer):
    def __init__(self, model: torch.nn.Module, lr: float = 0.02, embedding_lr: float = 0.002, adam_lr: float = 3e-4,
                 beta1: float = 0.95, beta2: float = 0.99, noise_epsilon: float = 1e-12, weight_decay: float = 0.0,
                 adam_betas=(0.9, 0.95), adam_eps: float = 1e-10, coefficients=MUON_NS_COEFFICIENTS):
        checks = {"learning_rate": lr > 0, "embedding_learning_rate": embedding_lr > 0, "adam_learning_rate": adam_lr > 0,
                  "beta1": 0 <= beta1 < 1, "beta2": 0 <= beta2 < 1, "noise_epsilon": noise_epsilon > 0,
                  "weight_decay": weight_decay >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"LANTON: invalid {', '.join(bad)} (lr={lr}, embedding_lr={embedding_lr}, adam_lr={adam_lr}, "
                             f"beta1={beta1}, beta2={beta2}, noise_epsilon={noise_epsilon}, weight_decay={weight_decay}); "
                             "valid: learning rates > 0, 0 <= beta1, beta2 < 1, noise_epsilon > 0, weight_decay >= 0")
        embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if id(p) in embedding_ids], "lr": embedding_lr, "geometry": "embedding"},
            {"params": [p for p in params if p.dim() >= 2 and id(p) not in embedding_ids], "lr": lr, "geometry": "matrix"},
            {"params": [p for p in params if p.dim() < 2 and id(p) not in embedding_ids], "lr": adam_lr, "geometry": "vector"},
        ]
        super().__init__([g for g in groups if g["params"]], {
            "beta1": beta1, "beta2": beta2, "noise_epsilon": noise_epsilon, "weight_decay": weight_decay,
            "betas": adam_betas, "eps": adam_eps})
        self.coefficients = tuple(coefficients)

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["geometry"] == "vector":
                for p in params:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.sub_(adam_direction(p.grad, self.state[p], group["betas"], group["eps"]), alpha=group["lr"])
            else:
                self._layerwise_step(params, group)
        return loss

    def _layerwise_step(self, params, group):
        geometry, beta1, beta2 = group["geometry"], group["beta1"], group["beta2"]
        for p in params:
            grad = p.grad.reshape(p.shape[0], -1) if geometry == "matrix" else p.grad
            state = self.state[p]
            if not state:
                state.update(momentum=torch.zeros_like(grad), previous_grad=None, noise=None)
            state["momentum"].mul_(beta1).add_(grad, alpha=1 - beta1)
            if state["previous_grad"] is not None:
                squared = dual_norm(grad - state["previous_grad"], geometry).square()
                noise = state["noise"] if state["noise"] is not None else torch.zeros_like(squared)
                state["noise"] = noise.mul(beta2).add(squared, alpha=1 - beta2)
            state["previous_grad"] = grad.clone()
        noises = [self.state[p]["noise"] for p in params]
        if params and all(n is not None for n in noises):
            noise = torch.stack(noises)
            scales = ((noise.min() + group["noise_epsilon"]) / (noise + group["noise_epsilon"])).sqrt().tolist()
        else:  # no gradient difference yet: every layer at the group rate
            scales = [1.0] * len(params)
        for p, scale in zip(params, scales):
            lr = group["lr"] * scale
            self.state[p]["layer_lr_scale"] = scale
            p.mul_(1 - lr * group["weight_decay"])
            direction = lmo_direction(self.state[p]["momentum"], geometry, self.coefficients)
            p.sub_(direction.reshape(p.shape), alpha=lr)


def create_optimizer(params, hyperparameters, workload):
    return Lanton(params, lr=hyperparameters.learning_rate, embedding_lr=hyperparameters.embedding_learning_rate,
                  adam_lr=hyperparameters.adam_learning_rate, beta1=1.0 - hyperparameters.one_minus_beta1,
                  beta2=hyperparameters.beta2, noise_epsilon=hyperparameters.noise_epsilon,
                  weight_decay=hyperparameters.weight_decay,
                  adam_betas=(1.0 - hyperparameters.adam_one_minus_beta1, hyperparameters.adam_beta2),
                  adam_eps=hyperparameters.adam_epsilon)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
