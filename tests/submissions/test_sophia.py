import numpy as np
import pytest
import torch

from optimlib.schedules import warmup_cosine
from submission_testing import LogisticProblem, run_submission
from workloads.logreg.data import objective

# beta2 and rho are larger than the defaults so that rho * h overtakes |m| on some coordinates
# within the test, exercising both sides of the clip.
HP = {"learning_rate": 0.05, "beta1": 0.965, "beta2": 0.5, "rho": 0.5, "weight_decay": 0.1, "epsilon": 1e-15,
      "hessian_interval": 10, "warmup_factor": 0.05}


def sophia_reference(problem, steps, theta0, estimator, seed=0):
    """Algorithm 3 of the Sophia paper. The random draws (labels sampled from the model, Gaussian
    probes u) are regenerated from the same seeded torch generator, in the same order."""
    generator = torch.Generator().manual_seed(seed)
    b1, b2, rho, eps, wd = HP["beta1"], HP["beta2"], HP["rho"], HP["epsilon"], HP["weight_decay"]
    theta, m, h, out, clipped = theta0.copy(), 0 * theta0, 0 * theta0, [], []
    d, n = problem.d, len(problem.y)
    for t in range(steps):
        lr = HP["learning_rate"] * warmup_cosine(t, problem.step_hint, HP["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        m = b1 * m + (1 - b1) * g
        if t % HP["hessian_interval"] == 0:
            if estimator == "gnb":
                logits = problem.X @ theta[:d] + theta[d]
                probs = torch.sigmoid(torch.as_tensor(logits).float())
                sampled = torch.bernoulli(probs, generator=generator).numpy().astype(np.int64)
                _, g_hat = objective(theta, problem.X, sampled, 2, problem.l2)
                h_hat = n * g_hat * g_hat
            else:
                u_weight = torch.randn((1, d), generator=generator, dtype=torch.float64).numpy().ravel()
                u_bias = torch.randn((1,), generator=generator, dtype=torch.float64).numpy()
                u = np.concatenate([u_weight, u_bias])
                h_hat = u * (problem.hessian(theta) @ u)
            h = b2 * h + (1 - b2) * h_hat
        theta = theta - lr * wd * theta
        ratio = m / np.maximum(rho * h, eps)
        theta = theta - lr * np.clip(ratio, -1, 1)
        out.append(theta)
        clipped.append(np.abs(ratio) > 1)
    return out, np.array(clipped)


@pytest.mark.parametrize("estimator", ["gnb", "hutchinson"])
def test_sophia_matches_paper_equations(estimator):
    """25 steps: Hessian refreshes at steps 1, 11, 21; both clip branches and weight decay."""
    problem = LogisticProblem(step_hint=40)
    theta0 = np.linspace(-1, 1, problem.d + 1)
    ours = run_submission("sophia", {**HP, "estimator": estimator}, problem, 25, theta0)
    ref, clipped = sophia_reference(problem, 25, theta0, estimator)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12)
    assert clipped.any() and not clipped.all()  # both sides of the clip are exercised


def test_sophia_draws_depend_on_the_seed():
    problem = LogisticProblem(step_hint=40)
    a, b = (run_submission("sophia", {**HP, "estimator": "hutchinson"}, problem, 12, seed=s) for s in (0, 1))
    assert np.abs(a[-1] - b[-1]).max() > 1e-8


def test_sophia_rejects_unknown_estimator():
    with pytest.raises(ValueError, match="estimator='newton'.*valid"):
        run_submission("sophia", {**HP, "estimator": "newton"}, LogisticProblem(), 1)


@pytest.mark.slow
def test_sophia_reaches_logreg_target(reach_target):
    from harness.core.submission import load_submission

    tuned = load_submission("sophia").metadata["tuned_logreg"]
    reach_target("logreg_wine", "sophia", tuned, max_steps=5000)
