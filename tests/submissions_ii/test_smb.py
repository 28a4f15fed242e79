import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/smb/metadata.json").read_text())


def model_minimiser(s, g, g_trial, eta):
    """Birbil et al. (2021), the model step from s, g and y = g_t - g."""
    y = g_trial - g
    ys, ss, yy, yg, gg, sg = y @ s, s @ s, y @ y, y @ g, g @ g, s @ g
    sigma = 0.5 * (np.sqrt(ss) * (np.sqrt(yy) + np.sqrt(gg) / eta) - ys)
    theta = (ys + 2 * sigma) ** 2 - ss * yy
    c_g = -ss / (2 * sigma)
    c_s = c_g / theta * (-(ys + 2 * sigma) * yg + yy * sg)
    c_y = c_g / theta * (-(ys + 2 * sigma) * sg + ss * yg)
    return c_s * s + c_g * g + c_y * y


def reference(problem, hp, steps):
    d = problem.d
    x = np.zeros(d + 1)
    out, model_steps = [], 0
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        loss, g = problem.loss_and_grad(x)
        s = -lr * g
        trial_loss, g_trial = problem.loss_and_grad(x + s)
        if trial_loss <= loss - hp["armijo_c"] * lr * g @ g:
            x = x + s
        else:
            model_steps += 1
            parts = (slice(0, d), slice(d, d + 1))  # one model per parameter tensor (weight, bias)
            x = x + np.concatenate([model_minimiser(s[p], g[p], g_trial[p], hp["eta"]) for p in parts])
        out.append(x)
    return out, model_steps


def test_matches_numpy_reference_with_sgd_and_model_steps():
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 8.0}
    got = run_submission("smb", hp, problem, steps=25)
    want, model_steps = reference(problem, hp, 25)
    assert 0 < model_steps < 25, "both the accepted SGD step and the model step must occur"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_model_step_solves_a_quadratic_better_than_a_too_long_sgd_step():
    """On f = x^T A x / 2 an overshooting SGD step fails Armijo; the model step must decrease f."""
    from submissions.smb.submission import SMB

    A = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)

    def closure(backward=True):
        loss = 0.5 * x @ A @ x
        if backward:
            x.grad = (A @ x).detach()
        return loss.detach()

    optimizer = SMB([x], lr=0.5)
    before = float(closure(backward=False))
    optimizer.step(closure)
    assert optimizer.model_steps == 1 and float(closure(backward=False)) < before


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("smb", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
