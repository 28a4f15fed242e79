import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/componentwise_clip/metadata.json").read_text())


def reference(problem, hp, steps):
    """Yang & Ma (2022): each component's gradient (here w and b) clipped to norm c on its own, then AdamW."""
    d = problem.d
    theta = np.zeros(d + 1)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    b1, b2 = 1 - hp["one_minus_beta1"], hp["beta2"]
    out, clipped, unclipped = [], set(), set()
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * warmup_cosine(t - 1, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        for name, part in (("w", slice(0, d)), ("b", slice(d, d + 1))):
            norm = np.linalg.norm(g[part])
            if norm > hp["clip_level"]:
                clipped.add(name)
                g[part] *= hp["clip_level"] / norm
            else:
                unclipped.add(name)
        theta = theta * (1 - lr * hp["weight_decay"])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + hp["epsilon"])
        out.append(theta)
    return out, clipped, unclipped


def test_matches_numpy_reference():
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 0.1, "clip_level": 0.05, "weight_decay": 1e-2, "warmup_factor": 0.1}
    got = run_submission("componentwise_clip", hp, problem, steps=25)
    want, clipped, unclipped = reference(problem, hp, 25)
    assert clipped == unclipped == {"w", "b"}, "each component must be clipped at some steps and not at others"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_components_are_clipped_independently():
    from submissions.componentwise_clip.submission import ComponentwiseClippedAdamW

    big, small = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    optimizer = ComponentwiseClippedAdamW([big, small], clip_level=1.0, lr=0.0)

    def closure():
        big.grad, small.grad = torch.full((3,), 10.0), torch.full((2,), 0.1)
        return torch.zeros(())

    optimizer.step(closure)
    assert float(big.grad.norm()) == pytest.approx(1.0)
    np.testing.assert_allclose(small.grad.numpy(), [0.1, 0.1])  # a global clip would have shrunk it


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("componentwise_clip", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
