import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/sso/metadata.json").read_text())


def reference(problem, hp, steps):
    """Lavington et al. (2023), SSO-SGD for logistic regression: z = X~ theta_t, dl/dz = sigmoid(z) - y;
    m times theta -= lr (l2 [w, 0] + X~^T ((sigmoid(z) - y) + (X~ theta - z) / eta) / n)."""
    Xb = np.hstack([problem.X, np.ones((len(problem.y), 1))])
    n, eta = len(problem.y), hp["target_step"]
    theta = np.zeros(problem.d + 1)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        z = Xb @ theta
        output_grad = 1 / (1 + np.exp(-z)) - problem.y
        for _ in range(hp["inner_steps"]):
            regularizer = problem.l2 * np.concatenate([theta[:-1], [0.0]])
            theta = theta - lr * (regularizer + Xb.T @ (output_grad + (Xb @ theta - z) / eta) / n)
        out.append(theta)
    return out


@pytest.mark.parametrize("inner_steps", [1, 4])
def test_matches_numpy_reference(inner_steps):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.8, "target_step": 2.0, "inner_steps": inner_steps, "warmup_factor": 0.1}
    got = run_submission("sso", hp, problem, steps=20)
    want = reference(problem, hp, 20)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_one_inner_step_is_a_gradient_step():
    """At theta_t the surrogate's gradient equals the loss gradient: m = 1 is plain SGD."""
    problem = LogisticProblem()
    theta = run_submission("sso", {"learning_rate": 0.5, "target_step": 1.0, "inner_steps": 1,
                                   "warmup_factor": 0.0}, problem, steps=1)[0]
    _, g = problem.loss_and_grad(np.zeros(problem.d + 1))
    np.testing.assert_allclose(theta, -0.5 * g, rtol=1e-10)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("sso", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
