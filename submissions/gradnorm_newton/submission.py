"""Gradient-regularized Newton with the gradient-normalized adaptive search (Semenov, Jaggi, Doikov:
Gradient-Normalized Smoothness for Optimization with Approximate Hessians, 2025), Algorithm 1, for the
convex logistic-regression suite.

    lambda_k = ||g_k|| / gamma_k,        x_trial = x_k - (H_k + lambda_k I)^{-1} g_k
    accept when f(x_k) - f(x_trial) >= ||g(x_trial)||^2 / (8 lambda_k)   (then gamma <- 2 gamma)
    else gamma <- max(gamma / 2, gamma_min) and retry (at most 40 times; then stay at x_k)

gamma is the local gradient-normalized smoothness estimate, carried across steps. H_k may be an
approximate Hessian: here the exact Hessian refreshed every `hessian_period` steps (1 = exact every
step; a stale Hessian is the paper's lazy approximation). Full batch, logreg family only (see
lazy_newton; the Hessian helpers are optimlib/hessian.py's, shared with it).
"""

import torch

from harness.core.spec import UnsupportedWorkloadError
from optimlib.hessian import FULL_BATCH, LazyHessian, add_flat_, gradient_and_hessian, require_small_convex_workload

MAX_SEARCH = 40


def get_batch_size(workload_name):
    return FULL_BATCH


class GradientNormalizedNewton(torch.optim.Optimizer):
    def __init__(self, params, gamma_0=1.0, gamma_min=1e-9, hessian_period=1):
        if gamma_0 <= 0 or gamma_min <= 0 or int(hessian_period) < 1:
            raise ValueError(f"invalid settings: gamma_0={gamma_0} (> 0) gamma_min={gamma_min} (> 0) "
                             f"hessian_period={hessian_period} (>= 1)")
        super().__init__(params, {"lr": 1.0})  # lr unused: the adaptive search sets the step
        self.gamma, self.gamma_min = gamma_0, gamma_min
        self.lazy_hessian = LazyHessian(hessian_period)
        self.hessian = None

    @torch.no_grad()
    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"]]
        loss, g, hessian = self.lazy_hessian.evaluate(closure, params)
        if hessian is not None:
            self.hessian = hessian
        grad_norm = float(g.norm())
        identity = torch.eye(len(g), dtype=g.dtype)
        for _ in range(MAX_SEARCH):
            regularization = grad_norm / self.gamma
            delta = -torch.linalg.solve(self.hessian + regularization * identity, g)
            add_flat_(params, delta)
            with torch.enable_grad():
                trial_loss, trial_grad, _ = gradient_and_hessian(closure, params, with_hessian=False)
            if float(loss) - float(trial_loss) >= float(trial_grad @ trial_grad) / (8.0 * regularization):
                self.gamma *= 2.0
                return trial_loss
            add_flat_(params, -delta)
            self.gamma = max(self.gamma / 2.0, self.gamma_min)
        return loss


def create_optimizer(params, hyperparameters, workload):
    require_small_convex_workload(workload, "gradnorm_newton", UnsupportedWorkloadError)
    return GradientNormalizedNewton(params.parameters(), gamma_0=hyperparameters.gamma_0,
                                    hessian_period=hyperparameters.hessian_period)
