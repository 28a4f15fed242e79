"""Submissions against the optimizers inside torch itself (torch.optim.AdamW, NAdam, Muon)."""

import torch
from oracle_testing import (MLPProblem, assert_trajectories_agree, max_difference, reference_trajectory,
                            submission_schedule, submission_trajectory)

from optimlib import schedules


def test_adamw_matches_torch_adamw():
    hp = {"learning_rate": 0.02, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.1,
          "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("adamw", hp, problem)
    reference = reference_trajectory(problem, lambda model: torch.optim.AdamW(
        model.parameters(), lr=0.02, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1),
        submission_schedule("adamw", hp, problem))
    assert_trajectories_agree(ours, reference, atol=1e-12)


def test_nadamw_matches_torch_nadam_up_to_its_momentum_bias_correction():
    """torch's NAdam (decoupled_weight_decay=True) with momentum_decay so large that its momentum
    schedule mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay)) is the constant beta1 of the AlgoPerf
    form. Convention that differs: torch divides the momentum part of the Nesterov step by
    1 - beta1^(t+1) (the product of the mu's up to the next step), AlgoPerf's NAdamW by 1 - beta1^t
    (optax's nadamw does as torch). The factor between them, (1 - beta1^t) / (1 - beta1^(t+1)), is
    large in the first steps and tends to 1; beta1 = 0.5 makes it vanish within ~20 steps, so what
    remains is a gap of about 1.3e-3 (of a travel of 0.25) that the tolerance holds, while leaving
    out the Nesterov look-ahead (torch's AdamW) lands more than three tolerances away."""
    hp = {"learning_rate": 0.01, "one_minus_beta1": 0.5, "beta2": 0.99, "weight_decay": 0.1, "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("nadamw", hp, problem)

    def multiplier(step):  # nadamw (AlgoPerf API) applies this warm-up + cosine inside update_params
        return schedules.warmup_cosine(step, problem.step_hint, hp["warmup_factor"])

    reference = reference_trajectory(problem, lambda model: torch.optim.NAdam(
        model.parameters(), lr=0.01, betas=(0.5, 0.99), eps=1e-8, weight_decay=0.1, momentum_decay=1e9,
        decoupled_weight_decay=True), multiplier)
    atol = 3e-3
    assert_trajectories_agree(ours, reference, atol=atol)
    without_lookahead = reference_trajectory(problem, lambda model: torch.optim.AdamW(
        model.parameters(), lr=0.01, betas=(0.5, 0.99), eps=1e-8, weight_decay=0.1), multiplier)
    assert max_difference(ours, without_lookahead) > 3 * atol


def test_muon_matches_torch_muon_with_adamw_for_vectors(monkeypatch):
    """torch.optim.Muon for the 2-D weights, torch.optim.AdamW for the biases (the submission's split).
    Conventions that differ:
    - torch's Newton-Schulz runs in bfloat16 (no option); the submission in the parameters' dtype. The
      test makes torch's `.bfloat16()` cast keep float64, so torch's own iteration runs at our precision.
    - torch keeps the momentum as an EMA (B = mu B + (1 - mu) G, Nesterov (1 - mu) G + mu B), the
      submission as a sum (B = mu B + G, G + mu B): the direction differs by the factor 1 - mu, which
      the Newton-Schulz normalisation by ||U||_F removes (up to its eps: ||U|| + 1e-7 against
      max(||U||, 1e-7)): a relative 1e-7 of each step, 7.4e-8 after 50 steps.
    Same scale sqrt(max(1, out/in)) and decay W (1 - lr wd)."""
    hp = {"learning_rate": 0.02, "one_minus_momentum": 0.05, "nesterov": True, "weight_decay": 0.1,
          "adam_learning_rate": 3e-3, "adam_one_minus_beta1": 0.1, "adam_beta2": 0.95, "adam_epsilon": 1e-10,
          "warmup_factor": 0.1, "step_hint_factor": 1.0}
    problem = MLPProblem()
    ours = submission_trajectory("muon", hp, problem)
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self.clone())

    def make(model):
        matrices = [p for p in model.parameters() if p.dim() == 2]
        vectors = [p for p in model.parameters() if p.dim() < 2]
        return (torch.optim.Muon(matrices, lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.1),
                torch.optim.AdamW(vectors, lr=3e-3, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.1))

    reference = reference_trajectory(problem, make, submission_schedule("muon", hp, problem))
    assert_trajectories_agree(ours, reference, atol=2e-7)


def test_clipped_sgd_matches_torch_sgd_after_clip_grad_norm():
    """Global-norm clipping then plain SGD, as torch.nn.utils.clip_grad_norm_ + torch.optim.SGD. Convention
    that differs: torch scales by clip / (||g|| + 1e-6), the submission (and the paper's clip) by
    clip / ||g||: a relative 1e-6 on each clipped step. clip_level 0.5 clips most of the 50 steps."""
    hp = {"learning_rate": 0.5, "clip_level": 0.5, "warmup_factor": 0.1}
    problem = MLPProblem()
    ours = submission_trajectory("clipped_sgd", hp, problem)

    def clip_then_step(optimizer, closure):
        closure()
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 0.5)
        optimizer.step()

    reference = reference_trajectory(problem, lambda model: torch.optim.SGD(model.parameters(), lr=0.5),
                                     submission_schedule("clipped_sgd", hp, problem), step_with=clip_then_step)
    assert_trajectories_agree(ours, reference, atol=1e-6)
