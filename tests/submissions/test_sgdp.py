import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission
from test_adamp import projection_reference


def sgdp_reference(problem, hp, theta0, steps, lr_multiplier):
    """SGDP, Algorithm 1: heavy-ball buffer, Nesterov direction, projection of the weight's
    update, decay scaled by wd_ratio / (1 - momentum)."""
    mu, eps, wd = 1 - hp["one_minus_beta1"], hp["epsilon"], hp["weight_decay"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, buffer, out, projected, d = theta0.copy(), 0.0, [], [], problem.d
    for t in range(steps):
        lr = hp["learning_rate"] * lr_multiplier(t, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1]
        buffer = mu * buffer + g
        update = g + mu * buffer if hp["nesterov"] else buffer
        w_update, w_ratio, was_projected = projection_reference(x[:d], g[:d], update[:d], hp["delta"],
                                                                hp["wd_ratio"], eps)
        projected.append(was_projected)
        ratios = np.r_[np.full(d, w_ratio), 1.0]
        x = x * (1 - lr * wd * ratios / (1 - mu)) - lr * np.r_[w_update, update[d:]]
        out.append(x)
    return out, projected


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdp_matches_paper_equations(nesterov, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(10).standard_normal(problem.d + 1)
    hp = {"learning_rate": 0.3, "one_minus_beta1": 0.2, "weight_decay": 0.02, "nesterov": nesterov, "epsilon": 1e-8,
          "delta": 0.7, "wd_ratio": 0.1, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("sgdp", hp, problem, 25, theta0)
    want, projected = sgdp_reference(problem, hp, theta0, 25, lr_multiplier)
    assert any(projected) and not all(projected), projected
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_sgdp_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "sgdp", load_submission("sgdp").metadata["tuned_logreg"])
