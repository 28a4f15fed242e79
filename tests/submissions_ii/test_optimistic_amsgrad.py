import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/optimistic_amsgrad/metadata.json").read_text())


def reference(problem, hp, steps):
    """Wang et al. (2021), Alg. 2 with guess m_{t+1} = g_t: theta = EMA(g); v = EMA((g - m_t)^2);
    vhat = max(vhat, v) from eps; w_half -= lr theta / sqrt(vhat);
    w = w_half - lr (b1 theta + (1 - b1) m_{t+1}) / sqrt(vhat)."""
    b1, b2 = 1 - hp["one_minus_beta1"], hp["beta2"]
    w = np.zeros(problem.d + 1)
    w_half, theta, v, guess = w.copy(), np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    vhat = np.full_like(w, hp["epsilon"])
    out, vhat_grew, vhat_held = [], False, False
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(w)
        theta = b1 * theta + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g - guess) ** 2
        vhat_grew |= bool(np.any(v > vhat))
        vhat_held |= bool(np.any(v < vhat))
        vhat = np.maximum(vhat, v)
        w_half = w_half - lr * theta / np.sqrt(vhat)
        guess = g
        w = w_half - lr * (b1 * theta + (1 - b1) * guess) / np.sqrt(vhat)
        out.append(w)
    return out, vhat_grew and vhat_held


def test_matches_numpy_reference():
    problem = LogisticProblem()
    hp = {**METADATA["defaults"], "learning_rate": 0.05, "beta2": 0.9, "warmup_factor": 0.1}
    got = run_submission("optimistic_amsgrad", hp, problem, steps=30)
    want, both_max_branches = reference(problem, hp, 30)
    assert both_max_branches, "vhat must both grow and hold (the max's two branches)"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_rejects_zero_epsilon():
    from submissions.optimistic_amsgrad.submission import OptimisticAMSGrad

    with pytest.raises(ValueError, match="eps=0"):
        OptimisticAMSGrad([torch.zeros(1)], lr=0.1, eps=0)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("optimistic_amsgrad", "logreg_wine", METADATA["tuned_logreg"])
    assert record.status == "reached", record.error or record.best_metric
