"""Affine-invariant cubic Newton, AICN (Hanzely, Kamzolov, Pasechnyuk, Gasnikov, Richtarik, Takac: A Damped
Newton Method Achieves Global O(1/k^2) and Local Quadratic Convergence Rate, NeurIPS 2022), the damped
Newton step that the O(k^-3) follow-up (Hanzely, Abdukhakimov, Takac, 2024) builds on.

    G_k = ||g||*_x = sqrt(g^T H^{-1} g)                 (the local dual norm: affine invariant)
    alpha_k = (-1 + sqrt(1 + 2 L G_k)) / (L G_k)
    x_{k+1} = x_k - alpha_k H^{-1} g

L is the semi-strong self-concordance constant; the step is exactly the minimiser of the cubic
model in the local norm, so no line search is needed. alpha -> 1 near the solution (local
quadratic convergence) and ~ sqrt(2 / (L G)) far from it. The O(k^-3) paper's accelerated variant is
not implemented. Full batch, logistic-regression suite only (see lazy_newton for why).
"""

import math

import torch

from harness.core.spec import UnsupportedWorkloadError
from optimlib.hessian import FULL_BATCH, add_flat_, gradient_and_hessian, require_small_convex_workload


def get_batch_size(workload_name):
    return FULL_BATCH


def damped_step_size(local_norm: float, smoothness: float) -> float:
    """AICN's alpha = (-1 + sqrt(1 + 2 L G)) / (L G), written as 2 / (1 + sqrt(1 + 2 L G)) (no cancellation)."""
    return 2.0 / (1.0 + math.sqrt(1.0 + 2.0 * smoothness * local_norm))


class AICN(torch.optim.Optimizer):
    def __init__(self, params, self_concordance):
        if self_concordance <= 0:
            raise ValueError(f"self_concordance={self_concordance}; it must be > 0")
        super().__init__(params, {"lr": 1.0})  # lr: a multiplier of the method's own step, for schedules
        self.self_concordance = self_concordance

    @torch.no_grad()
    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"]]
        with torch.enable_grad():
            loss, g, hessian = gradient_and_hessian(closure, params)
        newton_direction = torch.linalg.pinv(hessian, hermitian=True) @ g  # H^+: softmax biases have a flat direction
        local_norm = math.sqrt(max(float(g @ newton_direction), 0.0))
        step_size = self.param_groups[0]["lr"] * damped_step_size(local_norm, self.self_concordance)
        add_flat_(params, -step_size * newton_direction)
        return loss


def create_optimizer(params, hyperparameters, workload):
    require_small_convex_workload(workload, "damped_newton", UnsupportedWorkloadError)
    return AICN(params.parameters(), self_concordance=hyperparameters.self_concordance)
