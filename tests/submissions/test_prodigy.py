import numpy as np
import pytest

from optimlib.schedules import warmup_cosine
from submission_testing import LogisticProblem, run_submission

HP = {"learning_rate": 1.0, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "d0": 1e-6, "warmup_factor": 0.1}


def prodigy_reference(problem, steps, theta0, weight_decay):
    """Algorithm 3 (Prodigy, Adam version) with decoupled weight decay; returns iterates and d's."""
    b1, b2, eps = HP["beta1"], HP["beta2"], HP["epsilon"]
    x0, x = theta0.copy(), theta0.copy()
    m, v, s, r, d = 0 * x, 0 * x, 0 * x, 0.0, HP["d0"]
    out, ds = [], []
    for k in range(steps):
        lr = HP["learning_rate"] * warmup_cosine(k, problem.step_hint, HP["warmup_factor"])
        _, g = problem.loss_and_grad(x)
        m = b1 * m + (1 - b1) * d * g
        v = b2 * v + (1 - b2) * d**2 * g**2
        r = np.sqrt(b2) * r + (1 - np.sqrt(b2)) * lr * d**2 * g @ (x0 - x)
        s = np.sqrt(b2) * s + (1 - np.sqrt(b2)) * lr * d**2 * g
        d_next = max(d, r / np.abs(s).sum())
        x = x - lr * d * (m / (np.sqrt(v) + d * eps) + weight_decay * x)
        d = d_next
        out.append(x)
        ds.append(d)
    return out, ds


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_prodigy_matches_paper_equations(weight_decay):
    problem = LogisticProblem(step_hint=60)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission("prodigy", {**HP, "weight_decay": weight_decay}, problem, 40, theta0)
    ref, ds = prodigy_reference(problem, 40, theta0, weight_decay)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12)
    # both branches of d = max(d, r/||s||_1): d holds at d0 first (r = 0 at x0), then grows by orders
    assert ds[0] == HP["d0"] and ds[-1] > 1e3 * HP["d0"]


@pytest.mark.slow
def test_prodigy_reaches_logreg_target(reach_target):
    reach_target("logreg_wine", "prodigy", max_steps=5000)
