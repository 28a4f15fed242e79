import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import LossType

METADATA = json.loads((Path(__file__).parents[2] / "submissions/egn/metadata.json").read_text())


def reference(problem, hp, steps):
    """Korbit et al. (2024): theta -= lr (J^T Q J / b + lambda I)^{-1} g, solved here in parameter space;
    for logistic regression J_i = [x_i, 1] and Q_i = p_i (1 - p_i)."""
    Xb = np.hstack([problem.X, np.ones((len(problem.y), 1))])
    theta = np.zeros(problem.d + 1)
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        p = 1 / (1 + np.exp(-(Xb @ theta)))
        gauss_newton = Xb.T @ (Xb * (p * (1 - p))[:, None]) / len(p)
        theta = theta - lr * np.linalg.solve(gauss_newton + hp["damping"] * np.eye(len(theta)), g)
        out.append(theta)
    return out


def test_matches_numpy_reference():
    problem = LogisticProblem()
    hp = {"learning_rate": 0.7, "damping": 1e-2, "warmup_factor": 0.1}
    got = run_submission("egn", hp, problem, steps=20)
    want = reference(problem, hp, 20)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


@pytest.mark.parametrize("loss_type", [LossType.SOFTMAX_CROSS_ENTROPY, LossType.MEAN_SQUARED_ERROR])
def test_output_space_solve_equals_parameter_space_solve(loss_type):
    """The Woodbury path for c = 3 outputs against the direct n x n solve, and L L^T = the loss's output Hessian."""
    from submissions.egn.submission import gauss_newton_direction, output_hessian_factor

    generator = torch.Generator().manual_seed(0)
    b, c, n, damping = 4, 3, 7, 0.1
    logits = torch.randn(b, c, generator=generator, dtype=torch.float64)
    jacobian = torch.randn(b, c, n, generator=generator, dtype=torch.float64)
    grad = torch.randn(n, generator=generator, dtype=torch.float64)
    factor = output_hessian_factor(logits, loss_type)
    for i in range(b):
        expected = torch.autograd.functional.hessian(
            lambda z: torch.nn.functional.cross_entropy(z[None], torch.tensor([0]))
            if loss_type is LossType.SOFTMAX_CROSS_ENTROPY else 0.5 * (z**2).sum(), logits[i])
        np.testing.assert_allclose((factor[i] @ factor[i].T).numpy(), expected.numpy(), atol=1e-12)
    gauss_newton = sum(jacobian[i].T @ factor[i] @ factor[i].T @ jacobian[i] for i in range(b)) / b
    direct = torch.linalg.solve(gauss_newton + damping * torch.eye(n, dtype=torch.float64), grad)
    woodbury = gauss_newton_direction(grad, jacobian, factor, damping)
    np.testing.assert_allclose(woodbury.numpy(), direct.numpy(), rtol=1e-10)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("egn", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric


def test_other_families_are_unsupported():
    from harness.core.spec import Hyperparameters, UnsupportedWorkloadError
    from harness.core.submission import load_submission
    from submissions.egn.submission import init_optimizer_state

    class ImageWorkload:
        name, family, step_hint = "vit", "vit", 100

    with pytest.raises(UnsupportedWorkloadError, match="'logreg' family only"):
        init_optimizer_state(ImageWorkload(), None, None, Hyperparameters({"damping": 0.1}), None)
    assert load_submission("egn").unsupported_reason("vit") is not None
