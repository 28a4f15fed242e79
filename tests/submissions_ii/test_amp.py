import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = json.loads((Path(__file__).parents[2] / "submissions/amp/metadata.json").read_text())["tuned_logreg"]


def project(delta, epsilon):
    norm = np.linalg.norm(delta)
    return delta * min(1.0, epsilon / (norm + 1e-12))


def reference(problem, hp, steps):
    """AMP (Zheng et al., Alg. 1): K projected ascent steps on delta (one ball per parameter tensor),
    then SGD-momentum at w with grad L(w + delta)."""
    d = problem.d
    theta, buf = np.zeros(d + 1), None
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        delta = np.zeros_like(theta)
        for _ in range(hp["inner_steps"]):
            moved = delta + hp["inner_lr"] * g
            delta = np.concatenate([project(moved[:d], hp["epsilon"]), project(moved[d:], hp["epsilon"])])
            _, g = problem.loss_and_grad(theta + delta)
        g = g + hp["weight_decay"] * theta
        buf = g if buf is None else hp["momentum"] * buf + g
        theta = theta - lr * buf
        out.append(theta)
    return out


@pytest.mark.parametrize("epsilon, inner_steps", [(0.05, 2), (10.0, 1), (0.5, 0)])
def test_matches_numpy_reference(epsilon, inner_steps):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.3, "epsilon": epsilon, "inner_lr": 1.0, "inner_steps": inner_steps, "momentum": 0.9,
          "weight_decay": 1e-3, "warmup_factor": 0.1}
    got = run_submission("amp", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_projection_is_active_in_the_reference_run():
    """The epsilon=0.05 case above really exercises the clipping branch (first gradients are larger)."""
    problem = LogisticProblem()
    _, g = problem.loss_and_grad(np.zeros(problem.d + 1))
    assert np.linalg.norm(g[: problem.d]) > 0.05


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("amp", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
