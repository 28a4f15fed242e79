import numpy as np
import pytest

from optimlib.schedules import warmup_cosine
from submission_testing import LogisticProblem, run_submission

HP = {"learning_rate": 0.05, "beta1": 0.98, "beta2": 0.92, "beta3": 0.99, "epsilon": 1e-8,
      "weight_decay": 0.1, "warmup_factor": 0.05}


def adan_reference(problem, steps, theta0, restart_interval):
    """Adan with the paper's proximal weight decay and bias-corrected moments (code betas b = 1 - beta_paper)."""
    b1, b2, b3, eps, wd = HP["beta1"], HP["beta2"], HP["beta3"], HP["epsilon"], HP["weight_decay"]
    theta, out, k = theta0.copy(), [], 0
    for t in range(steps):
        lr = HP["learning_rate"] * warmup_cosine(t, problem.step_hint, HP["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        if k == 0 or (restart_interval and k == restart_interval):  # (re)start: fresh moments
            m, v, n, g_prev, k = 0 * g, 0 * g, 0 * g, g, 0
        k += 1
        d = g - g_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d
        n = b3 * n + (1 - b3) * (g + b2 * d) ** 2
        eta = lr / (np.sqrt(n / (1 - b3**k)) + eps)
        theta = (theta - eta * (m / (1 - b1**k) + b2 * v / (1 - b2**k))) / (1 + lr * wd)
        g_prev = g
        out.append(theta)
    return out


@pytest.mark.parametrize("restart_interval", [0, 7])
def test_adan_matches_paper_equations(restart_interval):
    problem = LogisticProblem(step_hint=40)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    hp = {**HP, "restart_interval": restart_interval}
    ours = run_submission("adan", hp, problem, 30, theta0)
    np.testing.assert_allclose(ours, adan_reference(problem, 30, theta0, restart_interval), rtol=1e-5, atol=1e-12)


def test_adan_restart_changes_the_trajectory():
    problem = LogisticProblem(step_hint=40)
    plain = run_submission("adan", {**HP, "restart_interval": 0}, problem, 12)
    restarted = run_submission("adan", {**HP, "restart_interval": 7}, problem, 12)
    np.testing.assert_array_equal(plain[6], restarted[6])
    assert np.abs(plain[7] - restarted[7]).max() > 1e-6


@pytest.mark.slow
def test_adan_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "adan", max_steps=5000)
