"""Regularized Newton with lazy Hessians (Doikov, Chayti, Jaggi: Second-order optimization with lazy
Hessians, ICML 2023), for the convex logistic-regression suite.

The Hessian is recomputed only every `hessian_period` steps (at the snapshot z) and reused with a
fresh gradient at every step; the gradient-regularized Newton step keeps the reuse safe:

    x_{t+1} = x_t - (H(z) + lambda_t I)^{-1} g(x_t),     lambda_t = sqrt(M ||g(x_t)||)

M plays the Hessian-Lipschitz constant (the paper's numerical factor folds into it). The snapshot
is eigendecomposed once, H = Q diag(e) Q^T, so each step in between costs O(d^2), the source of the
paper's sqrt(d) saving with period m = d. Second-order methods that form the full Hessian only make
sense on small models: other workload families are declared unsupported. They are full-batch
methods, so the submission asks for a batch larger than any logistic-regression training split
(the workload then serves the whole split every step).
"""

import math

import torch

from harness.core.spec import UnsupportedWorkloadError
from optimlib.hessian import FULL_BATCH, LazyHessian, add_flat_, require_small_convex_workload


def get_batch_size(workload_name):
    return FULL_BATCH


class LazyRegularizedNewton(torch.optim.Optimizer):
    def __init__(self, params, hessian_lipschitz, hessian_period):
        if hessian_lipschitz <= 0 or int(hessian_period) < 1:
            raise ValueError(f"invalid lazy-Newton settings: hessian_lipschitz={hessian_lipschitz} (> 0), "
                             f"hessian_period={hessian_period} (>= 1)")
        super().__init__(params, {"lr": 1.0})  # lr: a multiplier of the method's own step, for schedules
        self.hessian_lipschitz = hessian_lipschitz
        self.lazy_hessian = LazyHessian(hessian_period)
        self.eigenvalues = self.eigenvectors = None

    @torch.no_grad()
    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"]]
        loss, g, hessian = self.lazy_hessian.evaluate(closure, params)
        if hessian is not None:
            self.eigenvalues, self.eigenvectors = torch.linalg.eigh(hessian)
        regularization = math.sqrt(self.hessian_lipschitz * float(g.norm()))
        Q = self.eigenvectors
        add_flat_(params, -self.param_groups[0]["lr"] * (Q @ ((Q.T @ g) / (self.eigenvalues + regularization))))
        return loss


def create_optimizer(params, hyperparameters, workload):
    require_small_convex_workload(workload, "lazy_newton", UnsupportedWorkloadError)
    return LazyRegularizedNewton(params.parameters(), hessian_lipschitz=hyperparameters.hessian_lipschitz,
                                 hessian_period=hyperparameters.hessian_period)
