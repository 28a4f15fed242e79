import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def projection_reference(w, g, update, delta, wd_ratio, eps):
    """Heo et al., eq. (12): for a weight of shape 1 x d the channel and layer views coincide; if
    |cos(w, g)| < delta / sqrt(d) the update loses its component along w and decay is scaled."""
    cosine = abs(w @ g) / max(np.linalg.norm(w) * np.linalg.norm(g), eps)
    if cosine < delta / np.sqrt(len(w)):
        unit = w / (np.linalg.norm(w) + eps)
        return update - (unit @ update) * unit, wd_ratio, True
    return update, 1.0, False


def adamp_reference(problem, hp, theta0, steps, lr_multiplier):
    """AdamP, Algorithm 2: Adam direction (optionally Nesterov), projected for the weight matrix;
    the bias (1-D) is never projected."""
    b1, b2, eps, wd = 1 - hp["one_minus_beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, m, v, out, projected = theta0.copy(), 0.0, 0.0, [], []
    d = problem.d
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        direction = (b1 * m + (1 - b1) * g) if hp["nesterov"] else m
        update = direction / (np.sqrt(v / (1 - b2**t)) + eps)
        w_update, w_ratio, was_projected = projection_reference(x[:d], g[:d], update[:d], hp["delta"],
                                                                hp["wd_ratio"], eps)
        projected.append(was_projected)
        ratios = np.r_[np.full(d, w_ratio), 1.0]
        x = x * (1 - lr * wd * ratios) - lr / (1 - b1**t) * np.r_[w_update, update[d:]]
        out.append(x)
    return out, projected


@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_paper_equations(nesterov, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(10).standard_normal(problem.d + 1)
    # delta chosen so that the weight is judged scale-invariant on some steps and not on others
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.05,
          "delta": 0.7, "wd_ratio": 0.1, "nesterov": nesterov, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("adamp", hp, problem, 25, theta0)
    want, projected = adamp_reference(problem, hp, theta0, 25, lr_multiplier)
    assert any(projected) and not all(projected), projected
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_adamp_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "adamp", load_submission("adamp").metadata["tuned_logreg"])
