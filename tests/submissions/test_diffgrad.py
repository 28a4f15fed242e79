import numpy as np

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def diffgrad_reference(problem, hp, theta0, steps, lr_multiplier):
    """Dubey et al., Algorithm 1: Adam moments; step lr * xi * m_hat / (sqrt(v_hat) + eps) written
    with the official code's eps placement, xi = 1 / (1 + exp(-|g_{t-1} - g_t|)), g_0 = 0."""
    b1, b2, eps, wd = 1 - hp["one_minus_beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, m, v, g_previous, out = theta0.copy(), 0.0, 0.0, np.zeros_like(theta0), []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1] + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        friction = 1 / (1 + np.exp(-np.abs(g_previous - g)))
        x = x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * friction * m / (np.sqrt(v) + eps)
        g_previous = g
        out.append(x)
    return out


def test_diffgrad_matches_paper_equations(lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(2).standard_normal(problem.d + 1)
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2,
          "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("diffgrad", hp, problem, 25, theta0)
    np.testing.assert_allclose(got, diffgrad_reference(problem, hp, theta0, 25, lr_multiplier), rtol=1e-5, atol=1e-12)


def test_diffgrad_friction_slows_steps_where_the_gradient_stalls(lr_multiplier):
    """The friction lies in [1/2, 1): diffGrad's first step (g_0 = 0) is Adam's times sigmoid(|g_1|)."""
    problem = LogisticProblem()
    hp = {"learning_rate": 0.05, "warmup_factor": 0.0, "weight_decay": 0.0}
    step = run_submission("diffgrad", hp, problem, 1)[0]
    g = problem.loss_and_grad(np.zeros(problem.d + 1))[1]
    adam_step = -0.05 * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999))  # official eps placement: sqrt(v) + eps
    np.testing.assert_allclose(step, adam_step / (1 + np.exp(-np.abs(g))), rtol=1e-6)


def test_diffgrad_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "diffgrad", load_submission("diffgrad").metadata["tuned_logreg"])
