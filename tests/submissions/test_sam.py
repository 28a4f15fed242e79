import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def sam_reference(problem, hp, theta0, steps, lr_multiplier):
    """Foret et al., Algorithm 1: e = rho g / ||g||, g_sam = grad L(w + e), then the base step from
    w with g_sam: SGD with heavy-ball momentum and L2 decay, or AdamW."""
    rho, wd, b1 = hp["rho"], hp["weight_decay"], 1 - hp["one_minus_beta1"]
    b2, eps = hp["beta2"], hp["epsilon"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    w, m, v, out = theta0.copy(), 0.0, 0.0, []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(w)[1]
        g_sam = problem.loss_and_grad(w + rho * g / np.linalg.norm(g))[1]
        if hp["base_optimizer"] == "sgd_momentum":
            m = b1 * m + g_sam + wd * w
            w = w - lr * m
        else:
            m = b1 * m + (1 - b1) * g_sam
            v = b2 * v + (1 - b2) * g_sam**2
            w = w * (1 - lr * wd) - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(w)
    return out


@pytest.mark.parametrize("base_optimizer", ["sgd_momentum", "adamw"])
def test_sam_matches_paper_equations(base_optimizer, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(9).standard_normal(problem.d + 1)
    hp = {"rho": 0.2, "base_optimizer": base_optimizer, "learning_rate": 0.3 if base_optimizer == "sgd_momentum" else 0.05,
          "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2, "warmup_factor": 0.1,
          "step_hint_factor": 0.3}
    got = run_submission("sam", hp, problem, 25, theta0)
    np.testing.assert_allclose(got, sam_reference(problem, hp, theta0, 25, lr_multiplier), rtol=1e-5, atol=1e-12)


def test_sam_names_the_valid_base_optimizers():
    with pytest.raises(ValueError, match="adamw"):
        run_submission("sam", {"base_optimizer": "lbfgs"}, LogisticProblem(), 1)


def test_sam_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "sam", load_submission("sam").metadata["tuned_logreg"])
