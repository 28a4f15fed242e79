"""Full-Hessian pieces for second-order methods on small models (a few hundred parameters): the
gradient and Hessian of a closure's loss, a flat step added back to the parameter tensors, and the
check that a workload is small enough for them. Shared by `lazy_newton`, `gradnorm_newton` and
`damped_newton`; `egn` shares the workload check."""

from __future__ import annotations

import warnings

import torch

# A batch size larger than any training split these methods run on: asked for by `get_batch_size`,
# it makes the workload serve its whole split every step (they are full-batch methods).
FULL_BATCH = 1 << 30
SMALL_CONVEX_FAMILY = "logreg"


def require_small_convex_workload(workload, method: str, unsupported_error: type[Exception]) -> None:
    """Raise `unsupported_error` unless `workload` is small and convex enough for `method`, which forms
    the full Hessian (the logistic-regression family). The caller passes its API's error
    (UnsupportedWorkloadError), so that optimlib needs nothing from the engine."""
    if workload.family != SMALL_CONVEX_FAMILY:
        raise unsupported_error(
            f"{method} forms the full Hessian; it supports the {SMALL_CONVEX_FAMILY!r} family only, "
            f"not {workload.name!r} (family {workload.family!r})")


def gradient_and_hessian(closure, params: list[torch.Tensor], with_hessian: bool = True):
    """(loss, flat gradient, Hessian or None) of the closure's loss over `params`, in float64.

    The Hessian comes row by row from double backward through the closure's graph
    (closure(create_graph=True)).
    """
    with warnings.catch_warnings():
        # torch warns that .grad holding a graph is a reference cycle; it is broken below.
        warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
        loss = closure(create_graph=with_hessian)
    grads = [p.grad for p in params]
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    hessian = None
    if with_hessian:
        rows = [torch.cat([r.reshape(-1) for r in torch.autograd.grad(flat_grad[i], params, retain_graph=True)])
                for i in range(flat_grad.numel())]
        hessian = torch.stack(rows).detach().double()
        for p in params:  # drop the graph held by .grad
            p.grad = p.grad.detach()
    return loss.detach(), flat_grad.detach().double(), hessian


def add_flat_(params: list[torch.Tensor], flat_step: torch.Tensor) -> None:
    """Add a flat vector (the parameters concatenated in order) to the parameters, in place."""
    offset = 0
    for p in params:
        n = p.numel()
        p.add_(flat_step[offset:offset + n].view_as(p).to(p.dtype))
        offset += n


class LazyHessian:
    """The gradient fresh at every step and the Hessian only every `period` steps (1: every step),
    the lazy approximation (Doikov, Chayti & Jaggi) that `lazy_newton` and `gradnorm_newton` share."""

    def __init__(self, period: int):
        self.period, self.steps = int(period), 0

    def evaluate(self, closure, params: list[torch.Tensor]):
        """(loss, flat gradient, the new Hessian, or None while the last one stands)."""
        refresh = self.steps % self.period == 0
        self.steps += 1
        with torch.enable_grad():
            return gradient_and_hessian(closure, params, with_hessian=refresh)

