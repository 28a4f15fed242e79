import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = Path(__file__).parents[2] / "submissions/oasis/metadata.json"
TUNED = json.loads(METADATA.read_text())["tuned_logreg"]


def rademacher(generator, d):
    """The optimizer's draws: one z for the weight (1 x d), then one for the bias."""
    def draw(shape):
        return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).double().numpy().ravel()

    return np.concatenate([draw((1, d)), draw((1,))])


def reference(problem, hp, steps, seed=0):
    """OASIS, Algorithm 1 (adaptive eta) or its fixed-step variant."""
    generator = torch.Generator().manual_seed(seed)
    w = np.zeros(problem.d + 1)
    w_prev, D, eta, theta = None, None, hp["learning_rate"], np.inf
    out, branches = [], set()
    for k in range(steps):
        _, g = problem.loss_and_grad(w)
        z = rademacher(generator, problem.d)
        v = z * (problem.hessian(w) @ z)
        D = v if k == 0 else hp["beta2"] * D + (1 - hp["beta2"]) * v
        Dhat = np.maximum(np.abs(D), hp["alpha"])
        if not hp["adaptive_lr"]:
            eta = hp["learning_rate"] * warmup_cosine(k, problem.step_hint, hp["warmup_factor"])
        elif k > 0:
            _, g_prev = problem.loss_and_grad(w_prev)
            dw, dg = w - w_prev, g - g_prev
            smooth = 0.5 * np.sqrt((dw * Dhat) @ dw / ((dg / Dhat) @ dg))
            growth = np.sqrt(1 + theta) * eta
            branches.add(growth < smooth)
            new_eta = min(growth, smooth)
            theta, eta = new_eta / eta, new_eta
        w_prev, w = w, w - eta * g / Dhat
        out.append(w)
    return out, branches


@pytest.mark.parametrize("adaptive_lr", [True, False])
def test_matches_numpy_reference(adaptive_lr):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.2, "beta2": 0.5, "alpha": 1e-3, "adaptive_lr": adaptive_lr, "warmup_factor": 0.1}
    got = run_submission("oasis", hp, problem, steps=25)
    want, branches = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")
    if adaptive_lr:
        assert branches == {True, False}  # both the growth cap and the smoothness estimate bind


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("oasis", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
