import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

TUNED = json.loads((Path(__file__).parents[2] / "submissions/entropy_sgd/metadata.json").read_text())["tuned_logreg"]


def reference(problem, hp, steps, seed=0):
    """Entropy-SGD, Algorithm 1 (SGLD inner loop, outer step on gamma (x - mu)), gamma scoped per step."""
    generator = torch.Generator().manual_seed(seed)
    d = problem.d
    x = np.zeros(d + 1)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        gamma = hp["gamma"] * (1 + hp["scoping"]) ** t
        xp, mu = x.copy(), x.copy()
        for _ in range(hp["langevin_steps"]):
            _, g = problem.loss_and_grad(xp)
            # the same draws as the optimizer: weight (1 x d) then bias (1), float64
            noise = np.concatenate([torch.randn((1, d), generator=generator, dtype=torch.float64).numpy().ravel(),
                                    torch.randn((1,), generator=generator, dtype=torch.float64).numpy()])
            xp = xp - hp["langevin_lr"] * (g - gamma * (x - xp)) + np.sqrt(hp["langevin_lr"]) * hp["noise"] * noise
            mu = (1 - hp["alpha"]) * mu + hp["alpha"] * xp
        x = x - lr * gamma * (x - mu)
        out.append(x)
    return out


@pytest.mark.parametrize("langevin_steps, noise", [(4, 1e-2), (1, 0.0)])
def test_matches_numpy_reference(langevin_steps, noise):
    problem = LogisticProblem()
    hp = {"learning_rate": 1.0, "langevin_steps": langevin_steps, "langevin_lr": 0.3, "gamma": 0.5, "scoping": 0.01,
          "noise": noise, "alpha": 0.75, "warmup_factor": 0.1}
    got = run_submission("entropy_sgd", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_rejects_bad_settings():
    from submissions.entropy_sgd.submission import EntropySGD

    with pytest.raises(ValueError, match="langevin_steps=0"):
        EntropySGD([torch.zeros(1)], lr=1.0, langevin_steps=0)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("entropy_sgd", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
