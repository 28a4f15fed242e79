"""Submissions against their authors' own packages: prodigyopt (Mishchenko & Defazio), lion-pytorch (the
implementation the Lion paper's authors point to), adamp (Clova AI, AdamP and SGDP), momo-opt (Schaipp
et al.), dog-optimizer (Ivgi et al.)."""

import adamp
import dog
import lion_pytorch
import momo
import prodigyopt
import pytest
from oracle_testing import (MLPProblem, assert_trajectories_agree, reference_trajectory, submission_schedule,
                            submission_trajectory)


@pytest.mark.parametrize(("epsilon", "atol"), [(1e-30, 1e-12), (1e-8, 2e-6)])
def test_prodigy_matches_prodigyopt_up_to_the_d_in_its_eps_term(epsilon, atol):
    """prodigyopt.Prodigy with decoupled weight decay, no bias correction, no safeguard warm-up: the
    submission's form. Convention that differs: prodigyopt adds d * eps to sqrt(v) with the d it has
    just raised, the submission (and the paper's Algorithm 3) with the d of this step, the one its
    moments were built with. With eps -> 0 (1e-30; prodigyopt refuses 0) the two agree to rounding
    (measured 3e-16); with the default eps 1e-8 by 5.9e-7 after 50 steps (d grows tenfold between
    early steps, and small gradient entries make d * eps felt). prodigyopt also leaves out the 1 - beta3
    factor of r and s, which cancels in d = r / ||s||_1."""
    hp = {"learning_rate": 1.0, "beta1": 0.9, "beta2": 0.99, "epsilon": epsilon, "weight_decay": 0.01, "d0": 1e-6,
          "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("prodigy", hp, problem)
    reference = reference_trajectory(problem, lambda model: prodigyopt.Prodigy(
        model.parameters(), lr=1.0, betas=(0.9, 0.99), eps=epsilon, weight_decay=0.01, decouple=True,
        use_bias_correction=False, safeguard_warmup=False, d0=1e-6), submission_schedule("prodigy", hp, problem))
    assert_trajectories_agree(ours, reference, atol=atol)


def test_lion_matches_lion_pytorch():
    """Lion (kappa l1) against lion_pytorch.Lion with its default lr-scaled decay theta (1 - lr wd),
    the submission's and the paper's form. Signs make this exact but for sign flips of entries at
    zero, which a float64 MLP does not hit."""
    hp = {"learning_rate": 3e-3, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.5, "kappa": "l1",
          "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("lion", hp, problem)
    reference = reference_trajectory(problem, lambda model: lion_pytorch.Lion(
        model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.5), submission_schedule("lion", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_clova_adamp(nesterov):
    """delta 1.0 makes the scale-invariance test fire on some steps of the MLP's weights (delta 0.1
    never does on an MLP this small), so both branches of the projection are compared."""
    hp = {"learning_rate": 0.01, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.1,
          "delta": 1.0, "wd_ratio": 0.1, "nesterov": nesterov, "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("adamp", hp, problem)
    reference = reference_trajectory(problem, lambda model: adamp.AdamP(
        model.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, delta=1.0, wd_ratio=0.1,
        nesterov=nesterov), submission_schedule("adamp", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


class SGDPProjectingACopy(adamp.SGDP):
    """Clova's SGDP, except that the projection works on a copy of the update. Without Nesterov the
    official update *is* the momentum buffer, and `perturb -= ...` then removes the radial part from
    the stored momentum as well; the paper's Algorithm 1 (and the submission) projects only the step,
    m_t keeping its radial part (measured: 0.17 apart after 50 steps when the projection fires)."""

    def _projection(self, p, grad, perturb, delta, wd_ratio, eps):
        return super()._projection(p, grad, perturb.clone(), delta, wd_ratio, eps)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdp_matches_clova_sgdp(nesterov):
    """Both divide the decoupled decay by 1 - momentum (the official code's form), dampening 0; the
    reference projects a copy of the update (SGDPProjectingACopy; with Nesterov the update is a new
    tensor anyway, so there it is Clova's SGDP unchanged)."""
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "weight_decay": 0.01, "nesterov": nesterov, "epsilon": 1e-8,
          "delta": 1.0, "wd_ratio": 0.1, "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("sgdp", hp, problem)
    reference = reference_trajectory(problem, lambda model: SGDPProjectingACopy(
        model.parameters(), lr=0.05, momentum=0.9, dampening=0, weight_decay=0.01, nesterov=nesterov, eps=1e-8,
        delta=1.0, wd_ratio=0.1), submission_schedule("sgdp", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


@pytest.mark.parametrize("estimate_lower_bound", [False, True])
def test_momo_matches_momo_opt(estimate_lower_bound):
    """momo.Momo: lb is the submission's lower_bound, use_fstar its estimate_lower_bound."""
    hp = {"learning_rate": 1.0, "one_minus_beta": 0.1, "weight_decay": 0.01, "lower_bound": 0.0,
          "estimate_lower_bound": estimate_lower_bound, "bias_correction": False, "warmup_factor": 0.1,
          "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("momo", hp, problem)
    reference = reference_trajectory(problem, lambda model: momo.Momo(
        model.parameters(), lr=1.0, weight_decay=0.01, beta=0.9, lb=0.0, bias_correction=False,
        use_fstar=estimate_lower_bound), submission_schedule("momo", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_momo_adam_matches_momo_opt():
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.01,
          "lower_bound": 0.0, "estimate_lower_bound": False, "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("momo_adam", hp, problem)
    reference = reference_trajectory(problem, lambda model: momo.MomoAdam(
        model.parameters(), lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01, lb=0.0),
        submission_schedule("momo_adam", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


@pytest.mark.parametrize(("name", "reference_class"), [("dog", dog.DoG), ("ldog", dog.LDoG)])
def test_dog_matches_dog_optimizer(name, reference_class):
    """The training iterates (the polynomial-decay average only changes what is evaluated). reps_rel 1e-2
    instead of the default 1e-6: a first step that small leaves DoG almost in place for 50 steps."""
    hp = {"learning_rate": 1.0, "reps_rel": 1e-2, "epsilon": 1e-8, "weight_decay": 1e-3, "averaging_gamma": 8.0}
    problem = MLPProblem()
    ours = submission_trajectory(name, hp, problem)
    reference = reference_trajectory(problem, lambda model: reference_class(
        model.parameters(), reps_rel=1e-2, lr=1.0, weight_decay=1e-3, eps=1e-8))
    assert_trajectories_agree(ours, reference, atol=1e-12)
