import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/zo_coordinate/metadata.json").read_text())


def reference(problem, hp, steps, seed=0):
    """Chen et al. (2024), CGE: g_i = (f(theta + mu e_i) - f(theta)) / mu on the mask S;
    theta_S -= lr (g_S + wd theta_S)."""
    generator = torch.Generator().manual_seed(seed)
    mask = np.concatenate([torch.rand(problem.d, generator=generator).numpy() < hp["density"],
                           torch.rand(1, generator=generator).numpy() < hp["density"]])
    mu = hp["difference_step"]
    theta = np.zeros(problem.d + 1)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        base, _ = problem.loss_and_grad(theta)
        estimate = np.zeros_like(theta)
        for i in np.flatnonzero(mask):
            shifted = theta.copy()
            shifted[i] += mu
            estimate[i] = (problem.loss_and_grad(shifted)[0] - base) / mu
        theta = theta - lr * mask * (estimate + hp["weight_decay"] * theta)
        out.append(theta)
    return out, mask


@pytest.mark.parametrize("density", [1.0, 0.5])
def test_matches_numpy_reference(density):
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "density": density, "weight_decay": 1e-2, "warmup_factor": 0.1}
    got = run_submission("zo_coordinate", hp, problem, steps=20)
    want, mask = reference(problem, hp, 20)
    assert mask.all() == (density == 1.0) and mask.any()
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


def test_forward_difference_approximates_the_gradient():
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 1.0, "warmup_factor": 0.0, "difference_step": 1e-6}
    theta = run_submission("zo_coordinate", hp, problem, steps=1)[0]
    _, g = problem.loss_and_grad(np.zeros(problem.d + 1))
    np.testing.assert_allclose(theta, -g, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("zo_coordinate", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
