"""AdamW with subset-norm adaptive step sizes (Nguyen & Nguyen, Efficient Adaptive Optimization via
Subset-Norm and Subspace-Momentum, 2024): one second-moment entry per *subset* of coordinates
instead of one per coordinate.

For a matrix parameter G (m x n; conv kernels use their (out, in*k*k) view) the coordinates are
partitioned into the slices along the larger dimension, each slice a subset of min(m, n)
coordinates, as in the authors' AdamW-SN:

    v = beta2 * v + (1 - beta2) * sum_{j in subset} G_j^2       (v: one entry per subset)
    m = beta1 * m + (1 - beta1) * G                              (beta1 = 0: RMSProp-SN, no m at all)
    W = W - lr * wd * W - lr * sqrt(1 - beta2^t)/(1 - beta1^t) * m / (sqrt(v) + eps)

The second moment shrinks from O(mn) to O(max(m, n)). Vectors (biases, norms) keep Adam's
per-coordinate second moment (the paper's choice: their share of memory is negligible).
"""

import math

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


def subset_view(tensor: torch.Tensor) -> torch.Tensor:
    """The matrix whose slices along the larger dimension are the subsets (vectors: one per coordinate)."""
    return tensor.reshape(tensor.shape[0], -1) if tensor.dim() >= 2 else tensor


def subset_sum_of_squares(grad: torch.Tensor) -> torch.Tensor:
    """Sum of squares over each subset, broadcastable against subset_view(grad)."""
    matrix = subset_view(grad)
    if matrix.dim() == 1:
        return matrix.square()
    smaller_dim = 1 if matrix.shape[0] >= matrix.shape[1] else 0
    return matrix.square().sum(dim=smaller_dim, keepdim=True)


class AdamSN(PerParameterOptimizer):
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid AdamSN settings: lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def update_parameter(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        second_moment_update = subset_sum_of_squares(grad)
        if not state:
            state["step"] = 0
            state["subset_second_moment"] = torch.zeros_like(second_moment_update)
            if beta1 > 0:
                state["momentum"] = torch.zeros_like(p)
        state["step"] += 1
        v = state["subset_second_moment"].mul_(beta2).add_(second_moment_update, alpha=1.0 - beta2)
        direction = grad
        if beta1 > 0:
            direction = state["momentum"].mul_(beta1).add_(grad, alpha=1.0 - beta1)
        step_size = group["lr"] * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
        p.mul_(1.0 - group["lr"] * group["weight_decay"])
        update = subset_view(direction) / (v.sqrt() + group["eps"])
        p.add_(update.reshape(p.shape), alpha=-step_size)


def create_optimizer(params, hyperparameters, workload):
    return AdamSN(params.parameters(), lr=hyperparameters.learning_rate,
                  betas=(hyperparameters.beta1, hyperparameters.beta2), eps=hyperparameters.epsilon,
                  weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
