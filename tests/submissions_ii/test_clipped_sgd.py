import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/clipped_sgd/metadata.json").read_text())


def reference(problem, hp, steps):
    """Sadiev et al. (2023), clipped-SGD: x <- x - gamma_k min(1, lambda / ||g||) g."""
    theta = np.zeros(problem.d + 1)
    out, clipped = [], []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        norm = np.linalg.norm(g)
        clipped.append(norm > hp["clip_level"])
        theta = theta - lr * min(1.0, hp["clip_level"] / norm) * g
        out.append(theta)
    return out, clipped


def test_matches_numpy_reference_in_both_branches():
    problem = LogisticProblem()
    hp = {"learning_rate": 3.0, "clip_level": 0.15, "warmup_factor": 0.1}
    got = run_submission("clipped_sgd", hp, problem, steps=25)
    want, clipped = reference(problem, hp, 25)
    assert any(clipped) and not all(clipped), "the test must exercise the clipped and the unclipped step"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_rejects_non_positive_clip_level():
    from submissions.clipped_sgd.submission import ClippedSGD

    with pytest.raises(ValueError, match="clip_level=0"):
        ClippedSGD([torch.zeros(1)], lr=0.1, clip_level=0)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("clipped_sgd", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
