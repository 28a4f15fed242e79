import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = json.loads((Path(__file__).parents[2] / "submissions/sania/metadata.json").read_text())["tuned_logreg"]


def reference(problem, hp, steps):
    """SANIA: t = 1 - sqrt(1 - 2 f/||g||^2_{B^-1}) when 2f < ||g||^2_{B^-1}, else 1; x -= lr t B^-1 g."""
    theta = np.zeros(problem.d + 1)
    acc = np.zeros_like(theta)
    out, branches = [], set()
    for t in range(1, steps + 1):
        f, g = problem.loss_and_grad(theta)
        if hp["preconditioner"] == "adagrad":
            acc = acc + g**2
            B = acc
        elif hp["preconditioner"] == "adam":
            acc = hp["beta2"] * acc + (1 - hp["beta2"]) * g**2
            B = acc / (1 - hp["beta2"] ** t)
        else:
            B = np.ones_like(theta)
        B = np.maximum(B, hp["epsilon"])
        B = np.sqrt(B) if hp["sqrt"] else B
        direction = g / B
        norm = direction @ g
        step = 1 - np.sqrt(1 - 2 * f / norm) if 2 * f < norm else 1.0
        branches.add(2 * f < norm)
        lr = hp["learning_rate"] * (warmup_cosine(t - 1, problem.step_hint, 0.0) if hp["lr_decay"] else 1.0)
        theta = theta - lr * step * direction
        out.append(theta)
    return out, branches


@pytest.mark.parametrize("preconditioner, sqrt, epsilon, lr_decay", [("adagrad", False, 0.1, False),
                                                                     ("adam", True, 0.01, True),
                                                                     ("identity", False, 0.1, False)])
def test_matches_numpy_reference(preconditioner, sqrt, epsilon, lr_decay):
    problem = LogisticProblem(l2=0.0)
    hp = {"learning_rate": 0.8, "preconditioner": preconditioner, "sqrt": sqrt, "beta2": 0.99, "epsilon": epsilon,
          "lr_decay": lr_decay}
    got = run_submission("sania", hp, problem, steps=25)
    want, branches = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")
    if preconditioner == "adagrad":
        assert branches == {True, False}  # both the Polyak root and the full step occur


def test_rejects_unknown_preconditioner():
    from submissions.sania.submission import SANIA

    with pytest.raises(ValueError, match="preconditioner='shampoo'; valid"):
        SANIA([torch.zeros(1)], preconditioner="shampoo")


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("sania", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
