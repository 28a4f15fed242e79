import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = json.loads((Path(__file__).parents[2] / "submissions/gam/metadata.json").read_text())["tuned_logreg"]


def reference(problem, hp, steps):
    """GAM (Zhang et al., Alg. 1 as in the authors' optimizer): four gradients, decomposition, SGD-momentum."""
    grad = lambda w: problem.loss_and_grad(w)[1]  # noqa: E731
    theta, buf = np.zeros(problem.d + 1), None
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        g0 = grad(theta)
        g1 = grad(theta + hp["rho"] * g0 / np.linalg.norm(g0))
        d = g1 - g0
        w2 = theta + hp["norm_rho"] * d / np.linalg.norm(d)
        g2 = grad(w2)
        g3 = grad(w2 + hp["rho"] * g2 / np.linalg.norm(g2))
        u = hp["beta1"] * g1 + hp["beta3"] * g3
        p = g0 + abs(hp["beta2"]) * g2
        cos = p @ u / (np.linalg.norm(p) * np.linalg.norm(u))
        u = u - hp["gamma"] * (p - cos * np.linalg.norm(p) * u / np.linalg.norm(u))
        u = u + hp["weight_decay"] * theta
        buf = u if buf is None else hp["momentum"] * buf + u
        theta = theta - lr * buf
        out.append(theta)
    return out


@pytest.mark.parametrize("gamma, beta2", [(0.3, -1.0), (0.0, 0.5)])
def test_matches_numpy_reference(gamma, beta2):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.3, "rho": 0.2, "norm_rho": 0.1, "beta1": 1.0, "beta2": beta2, "beta3": 0.7,
          "gamma": gamma, "momentum": 0.9, "weight_decay": 1e-3, "warmup_factor": 0.1}
    got = run_submission("gam", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("gam", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
