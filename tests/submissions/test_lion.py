import numpy as np
import pytest

from optimlib.schedules import warmup_cosine
from submission_testing import LogisticProblem, run_submission

HP = {"learning_rate": 0.05, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.5, "warmup_factor": 0.05}


def lion_k_reference(problem, steps, theta0, kappa):
    """c = b1 m + (1-b1) g; x -= lr (grad K(c) + lambda x); m = b2 m + (1-b2) g.
    K = ||.||_1 -> sign(c); K = ||.||_2 -> c / ||c||_2, per parameter tensor (weight, bias)."""
    theta, m, out = theta0.copy(), np.zeros_like(theta0), []
    tensors = [slice(0, problem.d), slice(problem.d, problem.d + 1)]
    for t in range(steps):
        lr = HP["learning_rate"] * warmup_cosine(t, problem.step_hint, HP["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        c = HP["beta1"] * m + (1 - HP["beta1"]) * g
        if kappa == "l1":
            direction = np.sign(c)
        else:
            direction = np.concatenate([c[s] / np.linalg.norm(c[s]) for s in tensors])
        theta = theta - lr * (direction + HP["weight_decay"] * theta)
        m = HP["beta2"] * m + (1 - HP["beta2"]) * g
        out.append(theta)
    return out


@pytest.mark.parametrize("kappa", ["l1", "l2"])
def test_lion_k_matches_paper_equations(kappa):
    problem = LogisticProblem(step_hint=40)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission("lion", {**HP, "kappa": kappa}, problem, 30, theta0)
    np.testing.assert_allclose(ours, lion_k_reference(problem, 30, theta0, kappa), rtol=1e-5, atol=1e-12)


def test_lion_solves_the_box_constrained_problem():
    """Lion with weight decay lambda converges into ||x||_inf <= 1/lambda, from a start outside the
    box, and settles on its face when the unconstrained optimum lies outside (weak l2 here)."""
    problem = LogisticProblem(l2=1e-4, step_hint=400)
    weight_decay = 2.0
    theta0 = np.full(problem.d + 1, 3.0 / weight_decay)
    hp = {**HP, "learning_rate": 0.05, "weight_decay": weight_decay, "warmup_factor": 0.0}
    trajectory = run_submission("lion", hp, problem, 400, theta0)
    final = np.abs(trajectory[-1]).max()
    assert np.abs(trajectory[0]).max() > 1.0 / weight_decay
    assert final <= 1.0 / weight_decay + 1e-9
    assert final >= 1.0 / weight_decay - 1e-2  # the constraint is active: x sits on the box's face
    # and beyond the box the unregularised run goes further, so the constraint is what stops it
    free = run_submission("lion", {**hp, "weight_decay": 0.0}, problem, 400, theta0)
    assert np.abs(free[-1]).max() > 1.0 / weight_decay + 0.1


def test_lion_rejects_unknown_kappa():
    with pytest.raises(ValueError, match="kappa='linf'.*valid"):
        run_submission("lion", {**HP, "kappa": "linf"}, LogisticProblem(), 1)


@pytest.mark.slow
def test_lion_reaches_logreg_target(reach_target):
    from harness.core.submission import load_submission

    tuned = load_submission("lion").metadata["tuned_logreg"]
    reach_target("logreg_wine", "lion", tuned, max_steps=5000)
