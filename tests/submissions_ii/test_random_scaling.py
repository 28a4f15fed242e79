import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = {}  # the defaults are the tuned point


def reference(problem, hp, steps, seed=0):
    """Zhang & Cutkosky, Alg. 1 with EMA momentum: m = b m + (1-b) g; x -= s lr (m + wd x), s ~ Exp(1)."""
    generator = torch.Generator().manual_seed(seed)
    theta = np.zeros(problem.d + 1)
    m = np.zeros_like(theta)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        m = hp["beta"] * m + (1 - hp["beta"]) * g
        s = 1.0 if hp["scaling"] == "none" else float(
            torch.empty((), dtype=torch.float64).exponential_(1.0, generator=generator))
        theta = theta - s * lr * (m + hp["weight_decay"] * theta)
        out.append(theta)
    return out


@pytest.mark.parametrize("scaling", ["exponential", "none"])
def test_matches_numpy_reference(scaling):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.5, "beta": 0.9, "weight_decay": 1e-3, "scaling": scaling, "warmup_factor": 0.1}
    got = run_submission("random_scaling", hp, problem, steps=25)
    want = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_scales_are_exponential_with_mean_one():
    from submissions.random_scaling.submission import RandomScaledSGDM

    opt = RandomScaledSGDM([torch.zeros(1)], lr=1.0, seed=3)
    draws = np.array([opt.draw_scale() for _ in range(4000)])
    assert draws.min() > 0 and abs(draws.mean() - 1) < 0.05 and abs(draws.std() - 1) < 0.08


def test_rejects_unknown_scaling():
    from submissions.random_scaling.submission import RandomScaledSGDM

    with pytest.raises(ValueError, match="scaling='gamma'; valid"):
        RandomScaledSGDM([torch.zeros(1)], lr=1.0, scaling="gamma")


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("random_scaling", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
