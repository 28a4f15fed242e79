import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = {'learning_rate': 0.001, 'damp': 0.0001}  # metadata tuned_logreg


def reference(problem, hp, steps):
    """M-FAC: F = damp I + (1/m) sum of the last m gradients' outer products (zeros before m steps),
    solved densely here; momentum EMA of F^{-1} g."""
    m, damp, mu, wd = hp["ngrads"], hp["damp"], hp["momentum"], hp["weight_decay"]
    theta = np.zeros(problem.d + 1)
    window, v = [], np.zeros_like(theta)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        g = g + wd * theta
        window = (window + [g])[-m:]
        F = damp * np.eye(len(theta)) + sum(np.outer(gi, gi) for gi in window) / m
        u = np.linalg.solve(F, g)
        v = mu * v + (1 - mu) * u if mu > 0 else u
        theta = theta - lr * v
        out.append(theta)
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_numpy_reference(momentum):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.05, "momentum": momentum, "weight_decay": 1e-3, "ngrads": 8, "damp": 1e-2,
          "warmup_factor": 0.1}
    got = run_submission("mfac", hp, problem, steps=25)  # 25 > 8: the ring buffer wraps around
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_rejects_bad_settings():
    import torch

    from submissions.mfac.submission import MFAC

    with pytest.raises(ValueError, match="ngrads=0"):
        MFAC([torch.zeros(2)], lr=1.0, ngrads=0)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("mfac", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
