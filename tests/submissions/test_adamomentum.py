import numpy as np

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def adamomentum_reference(problem, hp, theta0, steps, lr_multiplier):
    """Wang et al., AdaMomentum: v tracks the squared momentum (plus eps), bias-corrected Adam step,
    decoupled weight decay."""
    b1, b2, eps, wd = 1 - hp["one_minus_beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, m, v, out = theta0.copy(), 0.0, 0.0, []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * m**2 + eps
        x = x * (1 - lr * wd) - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(x)
    return out


def test_adamomentum_matches_paper_equations(lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(3).standard_normal(problem.d + 1)
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-6, "weight_decay": 1e-2,
          "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("adamomentum", hp, problem, 25, theta0)
    np.testing.assert_allclose(got, adamomentum_reference(problem, hp, theta0, 25, lr_multiplier),
                               rtol=1e-5, atol=1e-12)


def test_adamomentum_differs_from_adam():
    """Same moments except v: the trajectories must part after the first step."""
    problem = LogisticProblem()
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.0,
          "warmup_factor": 0.0}
    ada = run_submission("adamomentum", hp, problem, 5)
    adam = run_submission("adamw", {**hp, "weight_decay": 0.0}, problem, 5)
    assert np.abs(ada[-1] - adam[-1]).max() > 1e-4


def test_adamomentum_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "adamomentum", load_submission("adamomentum").metadata["tuned_logreg"])
