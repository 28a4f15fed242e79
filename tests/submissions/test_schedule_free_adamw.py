import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from harness.core.submission import load_submission

HP = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 0.05,
      "warmup_factor": 0.2, "step_hint_factor": 0.5, "r": 0.75, "weight_lr_power": 2.0}


def schedule_free_reference(problem, steps, theta0):
    """The paper's Schedule-Free AdamW with x, y, z kept explicitly, the average weighted by
    t^r lr_max^p (AlgoPerf's r); returns the y's and x's."""
    b1, b2, eps, wd = 1 - HP["one_minus_beta1"], HP["beta2"], HP["epsilon"], HP["weight_decay"]
    warmup = int(HP["warmup_factor"] * problem.step_hint * HP["step_hint_factor"])
    x, z, v = theta0.copy(), theta0.copy(), 0 * theta0
    lr_max, weight_sum, ys, xs = 0.0, 0.0, [], []
    for t in range(1, steps + 1):
        y = (1 - b1) * z + b1 * x
        _, g = problem.loss_and_grad(y)
        lr = HP["learning_rate"] * min(1.0, t / warmup)
        lr_max = max(lr_max, lr)
        weight = t ** HP["r"] * lr_max ** HP["weight_lr_power"]
        weight_sum += weight
        c = weight / weight_sum
        v = b2 * v + (1 - b2) * g * g
        g_hat = g / (np.sqrt(v / (1 - b2**t)) + eps) + wd * y
        z = z - lr * g_hat
        x = (1 - c) * x + c * z
        ys.append((1 - b1) * z + b1 * x)
        xs.append(x)
    return ys, xs


def test_schedule_free_matches_paper_equations():
    """30 steps, warm-up (3 steps: 0.2 of 0.5 of step_hint 30), r = 0.75 and weight decay included;
    the model holds y while training."""
    problem = LogisticProblem(step_hint=30)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission("schedule_free_adamw", HP, problem, 30, theta0)
    ys, _ = schedule_free_reference(problem, 30, theta0)
    np.testing.assert_allclose(ours, ys, rtol=1e-5, atol=1e-12)


def test_schedule_free_evaluates_x_and_resumes_from_y(evaluate_then_resume):
    problem = LogisticProblem(step_hint=30)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    evaluated, resumed = evaluate_then_resume("schedule_free_adamw", HP, problem, 25, theta0)
    ys, xs = schedule_free_reference(problem, 26, theta0)
    np.testing.assert_allclose(evaluated, xs[24], rtol=1e-5, atol=1e-12)
    assert np.abs(xs[24] - ys[24]).max() > 1e-4
    np.testing.assert_allclose(resumed, ys[25], rtol=1e-5, atol=1e-12)


@pytest.mark.slow
def test_schedule_free_reaches_logreg_target(reach_target):
    tuned = load_submission("schedule_free_adamw").metadata["tuned_logreg"]
    reach_target("logreg_wine", "schedule_free_adamw", tuned, max_steps=5000)


def test_schedule_free_defaults_are_the_algoperf_self_tuning_form():
    """AlgoPerf v0.5 self-tuning: r 0.75 and int(0.02 * step_hint * 0.75) warm-up steps (30 at step_hint 2000)."""
    from harness.core.spec import Hyperparameters
    from submissions.schedule_free_adamw.submission import create_optimizer

    problem = LogisticProblem(step_hint=2000)
    model, _ = problem.init_model_fn()
    defaults = Hyperparameters(load_submission("schedule_free_adamw").default_hyperparameters())
    group = create_optimizer(model, defaults, problem).param_groups[0]
    assert (group["r"], group["warmup_steps"], group["weight_lr_power"]) == (0.75, 30, 2.0)
