import numpy as np

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def nag_gs_reference(problem, hp, theta0, steps, lr_multiplier):
    """Leplat et al., NAG-GS (Gauss-Seidel splitting of the accelerated SDE), v_0 = x_0:
    v <- (v + a/gamma (mu x - g)) / (1 + a mu / gamma); gamma <- (a mu + gamma) / (1 + a); x <- (x + a v) / (1 + a)."""
    mu, gamma = hp["mu"], hp["gamma"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, v, out = theta0.copy(), theta0.copy(), []
    for t in range(steps):
        a = hp["learning_rate"] * lr_multiplier(t, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1]
        v = (v + a / gamma * (mu * x - g)) / (1 + a * mu / gamma)
        gamma = (a * mu + gamma) / (1 + a)
        x = (x + a * v) / (1 + a)
        out.append(x)
    return out


def test_nag_gs_matches_paper_equations(lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(4).standard_normal(problem.d + 1)
    hp = {"learning_rate": 0.3, "mu": 0.5, "gamma": 2.0, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("nag_gs", hp, problem, 25, theta0)
    np.testing.assert_allclose(got, nag_gs_reference(problem, hp, theta0, 25, lr_multiplier), rtol=1e-5, atol=1e-12)


def test_nag_gs_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "nag_gs", load_submission("nag_gs").metadata["tuned_logreg"])
