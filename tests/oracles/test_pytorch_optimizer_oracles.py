"""Submissions against pytorch_optimizer (kozistr's collection; its ports name their sources) and
torch-optimizer (jettify's collection: the ports of diffGrad and of AdaHessian's official code)."""

import pytest
import pytorch_optimizer
import torch
import torch_optimizer
from oracle_testing import (IGNORE_CREATE_GRAPH_WARNING, MLPProblem, assert_trajectories_agree, reference_trajectory,
                            submission_schedule, submission_trajectory)

pytestmark = IGNORE_CREATE_GRAPH_WARNING


def test_adan_matches_pytorch_optimizer_adan():
    """weight_decouple=False is the proximal decay theta / (1 + lr wd) of the paper and of the
    submission (weight_decouple=True multiplies by 1 - lr wd instead)."""
    hp = {"learning_rate": 0.01, "beta1": 0.98, "beta2": 0.92, "beta3": 0.99, "epsilon": 1e-8, "weight_decay": 0.1,
          "restart_interval": 0, "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("adan", hp, problem)
    reference = reference_trajectory(problem, lambda model: pytorch_optimizer.Adan(
        model.parameters(), lr=0.01, betas=(0.98, 0.92, 0.99), weight_decay=0.1, weight_decouple=False, eps=1e-8),
        submission_schedule("adan", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_sgdw_matches_pytorch_optimizer_sgdw_at_a_constant_rate():
    """Conventions that differ, both switched on the reference's side:
    - decay: the submission decays by eta_t * lambda (Loshchilov & Hutter's Algorithm 1: the schedule
      multiplier, not the learning rate alpha); pytorch_optimizer by lr * weight_decay, so the reference
      gets weight_decay = lambda / alpha.
    - momentum: the submission accumulates eta_t * alpha * g inside the momentum, pytorch_optimizer
      multiplies the whole buffer by the current lr. The two agree only while the rate is constant,
      so this test runs at one: no warm-up and a cosine horizon of 10^12 steps. (torch-optimizer's
      SGDW is no reference: it subtracts lr * weight_decay as a constant from every weight.)"""
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "weight_decay": 0.01, "warmup_factor": 0.0}
    problem = MLPProblem(step_hint=10**12)
    ours = submission_trajectory("sgdw", hp, problem)
    reference = reference_trajectory(problem, lambda model: pytorch_optimizer.SGDW(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01 / 0.05, weight_decouple=True),
        submission_schedule("sgdw", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


@pytest.mark.parametrize(("weight_decay", "atol"), [(0.0, 1e-12), (0.1, 3e-4)])
def test_subset_norm_matches_pytorch_optimizer_adamwsn(weight_decay, atol):
    """pytorch_optimizer's AdamWSN (a port of the authors' AdamW-SN), each matrix in a group of its own
    with `sn` and subset_size = its row length. Conventions that differ:
    - subsets: AdamWSN views a matrix as contiguous chunks of subset_size; the submission takes the
      slices along the larger dimension. They coincide for tall matrices (out >= in: the rows), so the
      MLP here is 3 -> 8 -> 8 -> 8; a wide matrix's subsets are its columns, which a contiguous view
      cannot express (tests/submissions_ii/test_subset_norm.py checks those against NumPy).
    - decay order: AdamWSN decays after the step, (w - lr u)(1 - lr wd); the submission before it,
      w (1 - lr wd) - lr u. Without decay the two agree to rounding; with wd 0.1 they differ by
      lr^2 wd |u| a step, 1.7e-4 after 50 steps."""
    hp = {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": weight_decay,
          "warmup_factor": 0.1}
    problem = MLPProblem(d=3, h=8, k=8)
    ours = submission_trajectory("subset_norm", hp, problem)

    def make(model):
        groups = [{"params": [p], "sn": True, "subset_size": p.shape[1]} if p.dim() == 2 else {"params": [p]}
                  for p in model.parameters()]
        return pytorch_optimizer.AdamWSN(groups, lr=0.01, betas=(0.9, 0.999), weight_decay=weight_decay, eps=1e-8)

    reference = reference_trajectory(problem, make, submission_schedule("subset_norm", hp, problem))
    assert_trajectories_agree(ours, reference, atol=atol)


def test_sophia_hutchinson_matches_pytorch_optimizer_sophiah():
    """Sophia-H. SophiaH clips m / max(h, eps) at +-p with no rho; the submission clips
    m / max(rho h, eps) at +-1. Since clip(x / rho, 1) = clip(x, rho) / rho, the reference gets p = rho,
    lr / rho, eps / rho and weight_decay * rho (its decay is lr-scaled). Both refresh the Hessian
    estimate at steps 1, k + 1, 2k + 1, ... (the official SophiaG training loop refreshes after steps
    k, 2k, ...; it is not a package), with Gaussian probes drawn parameter by parameter from seed 0.
    The Gauss-Newton-Bartlett estimator (Sophia-G) has no package to compare with; its NumPy
    reference is tests/submissions/test_sophia.py."""
    rho, interval = 0.04, 5
    hp = {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.99, "rho": rho, "weight_decay": 0.1, "epsilon": 1e-15,
          "estimator": "hutchinson", "hessian_interval": interval, "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("sophia", hp, problem)
    reference = reference_trajectory(problem, lambda model: pytorch_optimizer.SophiaH(
        model.parameters(), lr=0.01 / rho, betas=(0.9, 0.99), weight_decay=0.1 * rho, weight_decouple=True, p=rho,
        update_period=interval, eps=1e-15 / rho, hessian_distribution="gaussian"),
        submission_schedule("sophia", hp, problem), create_graph=True)
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_sam_matches_pytorch_optimizer_sam():
    """SAM around heavy-ball SGD. pytorch_optimizer's SAM restores the weights from a saved copy after
    the second pass, the submission subtracts the perturbation again (w + e - e, a rounding apart),
    which 50 steps grow to about 1e-9."""
    hp = {"rho": 0.05, "base_optimizer": "sgd_momentum", "learning_rate": 0.05, "one_minus_beta1": 0.1,
          "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 1e-3, "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("sam", hp, problem)

    def first_gradient_then_step(optimizer, closure):  # its step() expects the first gradient in place
        closure()
        optimizer.step(closure)

    reference = reference_trajectory(problem, lambda model: pytorch_optimizer.SAM(
        model.parameters(), torch.optim.SGD, rho=0.05, lr=0.05, momentum=0.9, weight_decay=1e-3),
        submission_schedule("sam", hp, problem), step_with=first_gradient_then_step)
    assert_trajectories_agree(ours, reference, atol=1e-8)


def test_orthograd_matches_pytorch_optimizer_orthograd():
    hp = {"base": "adamw", "learning_rate": 0.01, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8,
          "weight_decay": 0.01, "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("orthograd", hp, problem)
    reference = reference_trajectory(problem, lambda model: pytorch_optimizer.OrthoGrad(torch.optim.AdamW(
        model.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)),
        submission_schedule("orthograd", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_diffgrad_matches_torch_optimizer_diffgrad():
    """L2 decay added to the gradient and g_0 = 0, as in the official code that torch-optimizer ports."""
    hp = {"learning_rate": 0.01, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.01,
          "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("diffgrad", hp, problem)
    reference = reference_trajectory(problem, lambda model: torch_optimizer.DiffGrad(
        model.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01),
        submission_schedule("diffgrad", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_adahessian_matches_torch_optimizer_adahessian():
    """torch-optimizer's Adahessian (the official code's port): |z * Hz| with Rademacher z drawn
    parameter by parameter from seed 0 (the submission's hutchinson_seed), decoupled decay inside the
    step; hessian_power 1 set on both (torch-optimizer's default is 0.5)."""
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-4, "weight_decay": 0.01,
          "hessian_power": 1.0, "hutchinson_seed": 0, "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("adahessian", hp, problem)
    reference = reference_trajectory(problem, lambda model: torch_optimizer.Adahessian(
        model.parameters(), lr=0.05, betas=(0.9, 0.99), eps=1e-4, weight_decay=0.01, hessian_power=1.0),
        submission_schedule("adahessian", hp, problem), create_graph=True)
    assert_trajectories_agree(ours, reference, atol=1e-12)
