"""DoG and L-DoG against the paper's equations (both share optimlib/dog.py)."""

import numpy as np
import pytest

from submission_testing import LogisticProblem, run_submission

HP = {"learning_rate": 1.0, "reps_rel": 1e-6, "epsilon": 1e-8, "averaging_gamma": 8.0}


def dog_reference(problem, steps, theta0, layerwise, weight_decay):
    """x_{t+1} = x_t - rbar_t / sqrt(G_t) g_t per block; returns iterates and the gamma=8 averages."""
    blocks = [slice(0, problem.d), slice(problem.d, problem.d + 1)] if layerwise else [slice(0, problem.d + 1)]
    x0, x = theta0.copy(), theta0.copy()
    rbar = [HP["reps_rel"] * (1 + np.linalg.norm(x0[b])) for b in blocks]
    G = [HP["epsilon"]] * len(blocks)
    xs, averages, average = [], [], None
    for t in range(1, steps + 1):
        _, g = problem.loss_and_grad(x)
        g = g + weight_decay * x
        step = np.zeros_like(x)
        for i, b in enumerate(blocks):
            rbar[i] = max(rbar[i], np.linalg.norm(x[b] - x0[b]))
            G[i] += g[b] @ g[b]
            step[b] = HP["learning_rate"] * rbar[i] / np.sqrt(G[i]) * g[b]
        x = x - step
        c = (1 + HP["averaging_gamma"]) / (t + HP["averaging_gamma"])
        average = x.copy() if average is None else (1 - c) * average + c * x
        xs.append(x)
        averages.append(average)
    return xs, averages


@pytest.mark.parametrize("name,layerwise", [("dog", False), ("ldog", True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_dog_matches_paper_equations(name, layerwise, weight_decay):
    problem = LogisticProblem()
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission(name, {**HP, "weight_decay": weight_decay}, problem, 30, theta0)
    ref, _ = dog_reference(problem, 30, theta0, layerwise, weight_decay)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12)


def test_dog_and_ldog_differ():
    problem = LogisticProblem()
    theta0 = np.linspace(-1, 1, problem.d + 1)
    dog, ldog = (run_submission(n, {**HP, "weight_decay": 0.0}, problem, 30, theta0) for n in ("dog", "ldog"))
    assert np.abs(dog[-1] - ldog[-1]).max() > 1e-3


@pytest.mark.parametrize("name,layerwise", [("dog", False), ("ldog", True)])
def test_dog_evaluates_the_polynomial_average(name, layerwise, evaluate_then_resume):
    problem = LogisticProblem()
    theta0 = np.linspace(-1, 1, problem.d + 1)
    evaluated, resumed = evaluate_then_resume(name, {**HP, "weight_decay": 0.0}, problem, 25, theta0)
    xs, averages = dog_reference(problem, 26, theta0, layerwise, 0.0)
    np.testing.assert_allclose(evaluated, averages[24], rtol=1e-5, atol=1e-12)
    assert np.abs(averages[24] - xs[24]).max() > 1e-4  # the average is not the last iterate
    np.testing.assert_allclose(resumed, xs[25], rtol=1e-5, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dog", "ldog"])
def test_dog_reaches_logreg_target(name, reach_target):
    """L-DoG with its defaults; DoG with its documented tuned_logreg point (lr multiplier 2)."""
    from harness.core.submission import load_submission

    tuned = load_submission(name).metadata.get("tuned_logreg", {})
    reach_target("logreg_wine", name, tuned, max_steps=5000)
