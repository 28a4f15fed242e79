import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

METADATA = json.loads((Path(__file__).parents[2] / "submissions/damped_newton/metadata.json").read_text())


def reference(problem, hp, steps):
    """Hanzely et al. (2022), AICN: G = sqrt(g^T H^-1 g); alpha = (-1 + sqrt(1 + 2 L G)) / (L G); x -= alpha H^-1 g."""
    L = hp["self_concordance"]
    theta = np.zeros(problem.d + 1)
    out, alphas = [], []
    for _ in range(steps):
        _, g = problem.loss_and_grad(theta)
        direction = np.linalg.solve(problem.hessian(theta), g)
        G = np.sqrt(g @ direction)
        alphas.append((-1 + np.sqrt(1 + 2 * L * G)) / (L * G) if G > 1e-6 else 1.0)  # the 0/0 limit is 1
        theta = theta - alphas[-1] * direction
        out.append(theta)
    return out, alphas


def test_matches_numpy_reference():
    problem = LogisticProblem()
    hp = {"self_concordance": 5.0}
    got = run_submission("damped_newton", hp, problem, steps=20, theta0=None)
    want, alphas = reference(problem, hp, 20)
    assert alphas[0] < 0.6 and alphas[-1] > 0.99, "damped far from the solution, full Newton steps near it"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


def test_rejects_non_positive_constant():
    import torch

    from submissions.damped_newton.submission import AICN

    with pytest.raises(ValueError, match="self_concordance=0"):
        AICN([torch.zeros(1)], self_concordance=0)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("damped_newton", "logreg_breast_cancer", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric


def test_other_families_are_unsupported():
    from harness.core.spec import UnsupportedWorkloadError
    from harness.core.submission import load_submission
    from submissions.damped_newton.submission import create_optimizer

    class TextWorkload:
        name, family = "gpt2", "gpt2"

    with pytest.raises(UnsupportedWorkloadError, match="'logreg' family only"):
        create_optimizer(None, {}, TextWorkload())
    assert load_submission("damped_newton").unsupported_reason("gpt2") is not None
    assert load_submission("damped_newton").unsupported_reason("logreg_wine") is None
