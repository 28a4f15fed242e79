"""psgd against psgd_torch, Xi-Lin Li's PSGD package (its Newton class: the dense preconditioner fitted to
Hessian-vector products; keep_invQ=False is the triangular-group form the submission implements)."""

import warnings

import torch
from oracle_testing import (IGNORE_CREATE_GRAPH_WARNING, MLPProblem, assert_trajectories_agree, reference_trajectory,
                            submission_trajectory)

with warnings.catch_warnings():  # psgd_torch compiles its kernels with torch.jit.script, deprecated in torch 2.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import psgd_torch.psgd

pytestmark = IGNORE_CREATE_GRAPH_WARNING


class NewtonStepper:
    """psgd_torch's Newton is not a torch Optimizer: it takes a closure that returns the loss and
    differentiates it itself, and it has no param_groups (so the reference loop runs at a constant rate)."""

    param_groups = []

    def __init__(self, newton):
        self.newton = newton

    def step(self, closure):
        return self.newton.step(lambda: closure(backward=False))


def test_psgd_matches_psgd_torch_newton_triangular(monkeypatch):
    """Same Q_0 = (v.v / h.h)^(1/4) I, same triangular-group fitting step Q <- Q - mu triu(a a^T - b b^T) Q /
    norm, same momentum and w <- w - lr Q^T Q m, the same Gaussian v drawn parameter by parameter from
    seed 0, preconditioner lr 0.01 (psgd_torch's default for its '1st' normaliser, the submission's
    default). Conventions that differ, both switched on the reference's side:
    - the normaliser: psgd_torch divides by norm_lower_bound(triu(a a^T - b b^T)), a cheap lower bound
      of the triangular part's spectral norm; the submission by the exact ||a a^T - b b^T||_2 of the
      symmetric difference (1.4e-3 apart after 50 steps, of a travel of 0.46). The test gives psgd_torch a
      norm that rebuilds the symmetric matrix from its upper triangle and takes its exact spectral norm.
    - psgd_torch draws torch.rand([]) each step to decide whether to refit Q; with update probability 1
      that draw only shifts the random stream the v's come from, so the test makes it return 0.
    A constant rate (no warm-up, a cosine horizon of 10^12 steps): psgd_torch's lr_params is fixed."""
    hp = {"learning_rate": 0.05, "beta": 0.9, "preconditioner_lr": 0.01, "max_params": 4096, "warmup_factor": 0.0}
    problem = MLPProblem(step_hint=10**12)
    ours = submission_trajectory("psgd", hp, problem)

    def exact_symmetric_norm(upper):
        return torch.linalg.matrix_norm(upper + upper.T - torch.diag(torch.diagonal(upper)), 2)

    monkeypatch.setattr(psgd_torch.psgd, "norm_lower_bound", exact_symmetric_norm)
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: torch.zeros(()))
    reference = reference_trajectory(problem, lambda model: NewtonStepper(psgd_torch.psgd.Newton(
        list(model.parameters()), lr_params=0.05, lr_preconditioner=0.01, momentum=0.9,
        preconditioner_update_probability=1.0, keep_invQ=False, step_normalizer="1st")))
    assert_trajectories_agree(ours, reference, atol=1e-12)
