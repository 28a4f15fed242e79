import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/induced_metric/metadata.json").read_text())


def reference(problem, hp, steps):
    """Harvey (2025): m = EMA(g, mu); s = EMA(xi ||g||_P^2, beta), both bias corrected;
    theta <- (1 - lr wd) theta - lr m_hat / (P (1 + s_hat)), P = 1 or sqrt(v_hat) + eps (RMS variant)."""
    theta = np.zeros(problem.d + 1)
    m, v, s = np.zeros_like(theta), np.zeros_like(theta), 0.0
    out = []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * warmup_cosine(t - 1, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        if hp["rms"]:
            v = hp["beta_rms"] * v + (1 - hp["beta_rms"]) * g * g
            precondition = np.sqrt(v / (1 - hp["beta_rms"] ** t)) + hp["epsilon"]
        else:
            precondition = np.ones_like(theta)
        s = hp["beta"] * s + (1 - hp["beta"]) * hp["xi"] * np.sum(g * g / precondition)
        m = hp["momentum"] * m + (1 - hp["momentum"]) * g
        theta = theta * (1 - lr * hp["weight_decay"])
        theta = theta - lr * (m / (1 - hp["momentum"] ** t)) / precondition / (1 + s / (1 - hp["beta"] ** t))
        out.append(theta)
    return out


@pytest.mark.parametrize("rms", [False, True])
def test_matches_numpy_reference(rms):
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 2.0, "xi": 5.0, "weight_decay": 1e-2, "rms": rms,
          "warmup_factor": 0.1}
    got = run_submission("induced_metric", hp, problem, steps=25)
    want = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_large_gradients_shrink_the_step():
    """The metric's point: a steep landscape (large xi ||g||^2) takes a much shorter step than SGD."""
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "momentum": 0.0, "warmup_factor": 0.0}
    flat = run_submission("induced_metric", {**hp, "xi": 0.0}, problem, steps=1)[0]
    steep = run_submission("induced_metric", {**hp, "xi": 1e4}, problem, steps=1)[0]
    _, g = problem.loss_and_grad(np.zeros(problem.d + 1))
    np.testing.assert_allclose(flat, -hp["learning_rate"] * g, rtol=1e-10)
    assert np.linalg.norm(steep) < 0.1 * np.linalg.norm(flat)


def test_rejects_bad_settings():
    import torch

    from submissions.induced_metric.submission import InducedMetricSGD

    with pytest.raises(ValueError, match="xi=-1"):
        InducedMetricSGD([torch.zeros(1)], lr=0.1, xi=-1)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("induced_metric", "logreg_wine", METADATA["tuned_logreg"])
    assert record.status == "reached", record.error or record.best_metric
