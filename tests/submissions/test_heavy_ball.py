import math

import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def step_decay_reference(t, horizon, C):
    """Pan et al.: log_C(T) stages of equal length, the rate divided by C after each."""
    stages = math.ceil(math.log(horizon) / math.log(C))
    return C ** -min(t // math.ceil(horizon / stages), stages - 1)


def heavy_ball_reference(problem, hp, theta0, steps):
    """w_{t+1} = w_t - eta_t (g_t + wd w_t) + beta (w_t - w_{t-1}), w_{-1} = w_0."""
    beta, wd = 1 - hp["one_minus_beta"], hp["weight_decay"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    w, w_previous, out = theta0.copy(), theta0.copy(), []
    for t in range(steps):
        eta = hp["learning_rate"] * step_decay_reference(t, horizon, hp["decay_factor"])
        _, g = problem.loss_and_grad(w)
        w, w_previous = w - eta * (g + wd * w) + beta * (w - w_previous), w
        out.append(w)
    return out


@pytest.mark.parametrize("decay_factor", [2.0, 3.0])
def test_heavy_ball_matches_paper_equations(decay_factor):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(1).standard_normal(problem.d + 1)
    # horizon 30: 5 stages of 6 steps (C=2) or 4 of 8 (C=3), all crossed within 32 steps
    hp = {"learning_rate": 0.8, "one_minus_beta": 0.2, "decay_factor": decay_factor, "weight_decay": 1e-2,
          "step_hint_factor": 0.3}
    got = run_submission("heavy_ball", hp, problem, 32, theta0)
    want = heavy_ball_reference(problem, hp, theta0, 32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_heavy_ball_rejects_a_decay_factor_of_one():
    with pytest.raises(ValueError, match="decay_factor"):
        run_submission("heavy_ball", {"decay_factor": 1.0}, LogisticProblem(), 1)


def test_heavy_ball_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "heavy_ball", load_submission("heavy_ball").metadata["tuned_logreg"])
