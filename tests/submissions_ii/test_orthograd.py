import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/orthograd/metadata.json").read_text())
THETA0 = np.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.2])  # non-zero weights, so the projection acts


def orthogonalize(w, g):
    """Prieto et al. (2025): g_perp = g - <w,g>/<w,w> w, rescaled to ||g||; one-element tensors unchanged."""
    if len(w) == 1:
        return g
    g_perp = g - (w @ g) / (w @ w + 1e-30) * w
    return g_perp * np.linalg.norm(g) / (np.linalg.norm(g_perp) + 1e-30)


def reference(problem, hp, steps):
    d = problem.d
    theta = THETA0.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    b1, b2 = 1 - hp["one_minus_beta1"], hp["beta2"]
    out = []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * warmup_cosine(t - 1, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        g = np.concatenate([orthogonalize(theta[:d], g[:d]), orthogonalize(theta[d:], g[d:])])
        if hp["base"] == "adamw":
            theta = theta * (1 - lr * hp["weight_decay"])
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + hp["epsilon"])
        else:  # torch SGD: coupled L2, momentum buffer starts at the first gradient
            g = g + hp["weight_decay"] * theta
            m = g if t == 1 else b1 * m + g
            theta = theta - lr * m
        out.append(theta)
    return out


@pytest.mark.parametrize("base", ["adamw", "sgd"])
def test_matches_numpy_reference(base):
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "base": base, "learning_rate": 0.05, "weight_decay": 1e-2, "warmup_factor": 0.1}
    got = run_submission("orthograd", hp, problem, steps=25, theta0=THETA0)
    want = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_update_is_orthogonal_to_the_weights_and_keeps_the_norm():
    from submissions.orthograd.submission import orthogonalize_

    p = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    p.grad = torch.tensor([0.5, 0.1, 0.3], dtype=torch.float64)
    norm = float(p.grad.norm())
    orthogonalize_(p)
    assert abs(float(torch.dot(p, p.grad))) < 1e-12
    assert float(p.grad.norm()) == pytest.approx(norm)


def test_rejects_unknown_base():
    from submissions.orthograd.submission import OrthoGrad

    with pytest.raises(ValueError, match="base='lion'; valid"):
        OrthoGrad([torch.zeros(1)], "lion", lr=0.1)


def test_resume_loads_the_base_optimizers_state():
    """The checkpoint restores through load_state_dict: the base (AdamW) must get the state back and
    the wrapper's groups, where the schedule sets lr, must stay the base's."""
    from submissions.orthograd.submission import OrthoGrad

    def make():
        w = torch.nn.Parameter(torch.tensor([1.0, 2.0, -1.0]))
        return w, OrthoGrad([w], "adamw", lr=0.1)

    w, optimizer = make()

    def closure():
        w.grad = torch.tensor([0.5, 0.1, 0.3])
        return torch.zeros(())

    optimizer.step(closure)
    w2, resumed = make()
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.param_groups is resumed.base.param_groups and resumed.state is resumed.base.state
    torch.testing.assert_close(resumed.base.state[w2]["exp_avg"], optimizer.base.state[w]["exp_avg"])
