import math

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import Hyperparameters
from harness.core.submission import load_submission

TUNED = {}  # the defaults are the tuned point


def reference(problem, hp, steps):
    """AdamW with lr * sqrt(k) or SGD-momentum with lr * k; cosine horizon step_hint (regime adaptation)
    or step_hint / k (same epochs)."""
    k = hp["batch_multiplier"]
    lr0 = hp["learning_rate"] * (math.sqrt(k) if hp["base_optimizer"] == "adam" else k)
    horizon = problem.step_hint if hp["regime_adaptation"] else math.ceil(problem.step_hint / k)
    b1, b2, eps, wd = hp["beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"]
    theta = np.zeros(problem.d + 1)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    out = []
    for t in range(1, steps + 1):
        lr = lr0 * warmup_cosine(t - 1, horizon, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        if hp["base_optimizer"] == "adam":
            theta = theta * (1 - lr * wd)
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
            theta = theta - lr / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps)
        else:
            g = g + wd * theta
            m = g if t == 1 else b1 * m + g
            theta = theta - lr * m
        out.append(theta)
    return out


@pytest.mark.parametrize("base, k, regime", [("adam", 4, True), ("adam", 4, False), ("sgd", 3, False),
                                             ("sgd", 1, True)])
def test_matches_numpy_reference(base, k, regime):
    problem = LogisticProblem(step_hint=40)
    hp = {"base_optimizer": base, "learning_rate": 0.02, "batch_multiplier": k, "regime_adaptation": regime,
          "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2, "warmup_factor": 0.1}
    got = run_submission("lr_batch_scaling", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_data_selection_concatenates_k_batches():
    submission = load_submission("lr_batch_scaling")
    stream = iter([{"inputs": torch.full((2, 3), float(i)), "targets": torch.full((2,), float(i))} for i in range(7)])
    hp = Hyperparameters({"batch_multiplier": 3})
    first = submission.data_selection(None, stream, None, None, None, hp, 0, None)
    second = submission.data_selection(None, stream, None, None, None, hp, 1, None)
    assert first["inputs"].shape == (6, 3) and first["targets"].tolist() == [0, 0, 1, 1, 2, 2]
    assert second["targets"].tolist() == [3, 3, 4, 4, 5, 5]


def test_rejects_unknown_base_optimizer():
    with pytest.raises(ValueError, match="base_optimizer='lamb'; valid: \\['adam', 'sgd'\\]"):
        run_submission("lr_batch_scaling", {"base_optimizer": "lamb"}, LogisticProblem(), steps=1)


@pytest.mark.slow
def test_reaches_target_on_logreg_with_a_doubled_batch(cpu_trial):
    record = cpu_trial("lr_batch_scaling", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
