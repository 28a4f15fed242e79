import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

METADATA = json.loads((Path(__file__).parents[2] / "submissions/gradnorm_newton/metadata.json").read_text())


def reference(problem, hp, steps):
    """Semenov, Jaggi, Doikov (2025), Alg. 1: lambda = ||g|| / gamma; trial x - (H + lambda I)^{-1} g;
    accept if f - f_trial >= ||g_trial||^2 / (8 lambda) (gamma *= 2), else gamma = max(gamma / 2, 1e-9)."""
    theta = np.zeros(problem.d + 1)
    gamma, out, rejections = hp["gamma_0"], [], 0
    for t in range(steps):
        if t % hp["hessian_period"] == 0:
            hessian = problem.hessian(theta)
        f, g = problem.loss_and_grad(theta)
        for _ in range(40):
            lam = np.linalg.norm(g) / gamma
            trial = theta - np.linalg.solve(hessian + lam * np.eye(len(theta)), g)
            f_trial, g_trial = problem.loss_and_grad(trial)
            if f - f_trial >= g_trial @ g_trial / (8 * lam):
                theta, gamma = trial, 2 * gamma
                break
            rejections += 1
            gamma = max(gamma / 2, 1e-9)
        out.append(theta)
    return out, rejections


@pytest.mark.parametrize("hessian_period", [1, 3])
def test_matches_numpy_reference(hessian_period):
    problem = LogisticProblem(l2=1e-3)
    hp = {"gamma_0": 1.0, "hessian_period": hessian_period}
    got = run_submission("gradnorm_newton", hp, problem, steps=20)
    want, rejections = reference(problem, hp, 20)
    assert rejections > 0, "the adaptive search must reject some trial steps"
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("gradnorm_newton", "logreg_breast_cancer", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric


def test_other_families_are_unsupported():
    from harness.core.spec import UnsupportedWorkloadError
    from harness.core.submission import load_submission
    from submissions.gradnorm_newton.submission import create_optimizer

    class RecommenderWorkload:
        name, family = "dlrm_small", "dlrm"

    with pytest.raises(UnsupportedWorkloadError, match="'logreg' family only"):
        create_optimizer(None, {}, RecommenderWorkload())
    assert load_submission("gradnorm_newton").unsupported_reason("dlrm_small") is not None
