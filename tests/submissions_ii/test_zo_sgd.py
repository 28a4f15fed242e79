import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/zo_sgd/metadata.json").read_text())


def perturbation(seed, d):
    """The draw z(seed) in the model's parameter order: weight (1 x d), then bias (1)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn((1, d), generator=generator, dtype=torch.float64).numpy().ravel()
    bias = torch.randn((1,), generator=generator, dtype=torch.float64).numpy()
    return np.concatenate([weight, bias])


def reference(problem, hp, steps, seed=0):
    """Malladi et al. (2023), MeZO: g_k = (L(theta + eps z_k) - L(theta - eps z_k)) / (2 eps);
    theta <- theta - lr (mean_k g_k z_k + wd theta)."""
    seeds = torch.Generator().manual_seed(seed)
    eps, q = hp["perturbation_scale"], hp["num_perturbations"]
    theta = np.zeros(problem.d + 1)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        estimate = np.zeros_like(theta)
        for _ in range(q):
            z = perturbation(int(torch.randint(2**62, (), generator=seeds)), problem.d)
            plus, _ = problem.loss_and_grad(theta + eps * z)
            minus, _ = problem.loss_and_grad(theta - eps * z)
            estimate += (plus - minus) / (2 * eps) * z / q
        theta = theta - lr * (estimate + hp["weight_decay"] * theta)
        out.append(theta)
    return out


@pytest.mark.parametrize("num_perturbations", [1, 3])
def test_matches_numpy_reference(num_perturbations):
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 0.1, "num_perturbations": num_perturbations,
          "weight_decay": 1e-2, "warmup_factor": 0.1}
    got = run_submission("zo_sgd", hp, problem, steps=25)
    want = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


def test_uses_forward_passes_only():
    from submissions.zo_sgd.submission import ZerothOrderSGD

    weight = torch.ones(3, requires_grad=True)
    calls = []

    def closure(backward=True):
        calls.append(backward)
        return (weight**2).sum().detach()

    ZerothOrderSGD([weight], lr=0.1, num_perturbations=2).step(closure)
    assert calls == [False] * 4 and weight.grad is None
