import numpy as np
import pytest
import torch

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission
from submissions.adahessian.submission import hessian_diagonal_estimate


def adahessian_reference(problem, hp, theta0, steps, lr_multiplier):
    """Yao et al., Algorithm 1: D = |z * H z| (Hutchinson, z Rademacher), m = EMA(g), v = EMA(D^2),
    x -= lr (m_hat / (sqrt(v_hat)^k + eps) + wd x). The z are redrawn from a generator seeded as
    the submission's, weight (1 x d) first, then bias."""
    b1, b2, eps, wd, k = 1 - hp["one_minus_beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"], hp["hessian_power"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    generator = torch.Generator().manual_seed(hp["hutchinson_seed"])
    x, m, v, out = theta0.copy(), 0.0, 0.0, []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        g = problem.loss_and_grad(x)[1]
        z = np.concatenate([torch.randint(0, 2, shape, generator=generator).double().numpy().ravel() * 2 - 1
                            for shape in ((1, problem.d), (1,))])
        D = np.abs(z * (problem.hessian(x) @ z))
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * D**2
        x = x - lr * ((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) ** k + eps) + wd * x)
        out.append(x)
    return out


@pytest.mark.parametrize("hessian_power", [1.0, 0.5])
def test_adahessian_matches_paper_equations(hessian_power, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(11).standard_normal(problem.d + 1)
    hp = {"learning_rate": 0.1, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-4, "weight_decay": 1e-2,
          "hessian_power": hessian_power, "hutchinson_seed": 3, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("adahessian", hp, problem, 25, theta0)
    np.testing.assert_allclose(got, adahessian_reference(problem, hp, theta0, 25, lr_multiplier), rtol=1e-5, atol=1e-12)


def test_adahessian_averages_conv_kernels_spatially():
    rng = np.random.default_rng(0)
    hz, z = rng.standard_normal((4, 3, 3, 3)), rng.choice([-1.0, 1.0], size=(4, 3, 3, 3))
    got = hessian_diagonal_estimate(torch.as_tensor(hz), torch.as_tensor(z)).numpy()
    want = np.broadcast_to(np.abs(hz * z).mean(axis=(2, 3), keepdims=True), hz.shape)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    dense = hessian_diagonal_estimate(torch.as_tensor(hz[:, :, 0, 0]), torch.as_tensor(z[:, :, 0, 0])).numpy()
    np.testing.assert_allclose(dense, np.abs(hz[:, :, 0, 0] * z[:, :, 0, 0]), rtol=1e-12)


def test_adahessian_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "adahessian", load_submission("adahessian").metadata["tuned_logreg"])
