import numpy as np
import pytest

from optimlib.schedules import warmup_cosine
from submission_testing import LogisticProblem, run_submission

HP = {"learning_rate": 0.5, "one_minus_beta1": 0.1, "weight_decay": 0.05, "warmup_factor": 0.05}


def sgdw_reference(problem, steps, theta0):
    """Algorithm 1 of Loshchilov & Hutter: m = b m + eta alpha g; theta -= m + eta lambda theta."""
    theta, m, out = theta0.copy(), np.zeros_like(theta0), []
    for t in range(steps):
        eta = warmup_cosine(t, problem.step_hint, HP["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        m = (1 - HP["one_minus_beta1"]) * m + eta * HP["learning_rate"] * g
        theta = theta - m - eta * HP["weight_decay"] * theta
        out.append(theta)
    return out


def test_sgdw_matches_paper_equations():
    problem = LogisticProblem(step_hint=40)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission("sgdw", HP, problem, 30, theta0)
    ref = sgdw_reference(problem, 30, theta0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12)
    # the decay is decoupled: the same run without weight decay ends elsewhere
    no_decay = run_submission("sgdw", {**HP, "weight_decay": 0.0}, problem, 30, theta0)
    assert np.abs(no_decay[-1] - ours[-1]).max() > 1e-3


@pytest.mark.slow
def test_sgdw_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "sgdw", max_steps=5000)
