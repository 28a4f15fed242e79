import numpy as np
import pytest
import torch

from harness.core.submission import load_submission
from submission_testing import run_submission

KELLER_QUINTIC = [(3.4445, -4.7750, 2.0315)] * 5


def newton_schulz_reference(G, coefficients, aol=False, eps=1e-7):
    """Quintic Newton-Schulz towards the polar factor, on the wide orientation. Muon: X = G/||G||_F.
    Turbo-Muon (AOL): X = diag(s) G with s_i = (sum_j |G G^T|_ij)^-1/2."""
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    if aol:
        X = X / np.sqrt(np.maximum(np.abs(X @ X.T).sum(axis=1), eps))[:, None]
    else:
        X = X / (np.linalg.norm(X) + eps)
    for a, b, c in coefficients:
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def muon_reference(problem, hp, theta0, steps, lr_multiplier, coefficients, aol=False):
    """Muon for the k x d weight (Nesterov momentum, orthogonalised, scaled by sqrt(max(1, k/d))),
    AdamW for the bias; decoupled weight decay on both."""
    mu, wd = 1 - hp["one_minus_momentum"], hp["weight_decay"]
    b1, b2, eps = 1 - hp["adam_one_minus_beta1"], hp["adam_beta2"], hp["adam_epsilon"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x, B, m, v, out = theta0.copy(), 0.0, 0.0, 0.0, []
    for t in range(1, steps + 1):
        multiplier = lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        lr, adam_lr = hp["learning_rate"] * multiplier, hp["adam_learning_rate"] * multiplier
        W, b = problem.split(x)
        G, g_b = problem.split(problem.loss_and_grad(x)[1])
        B = mu * B + G
        O = newton_schulz_reference(G + mu * B if hp["nesterov"] else B, coefficients, aol)
        W = W * (1 - lr * wd) - lr * np.sqrt(max(1.0, W.shape[0] / W.shape[1])) * O
        m = b1 * m + (1 - b1) * g_b
        v = b2 * v + (1 - b2) * g_b**2
        b = b * (1 - adam_lr * wd) - adam_lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        x = np.concatenate([W.ravel(), b])
        out.append(x)
    return out


MUON_HP = {"learning_rate": 0.05, "one_minus_momentum": 0.1, "weight_decay": 1e-2, "adam_learning_rate": 0.02,
           "adam_one_minus_beta1": 0.1, "adam_beta2": 0.95, "adam_epsilon": 1e-10, "warmup_factor": 0.1,
           "step_hint_factor": 0.3}
SHAPES = {"wide": {"k": 3, "d": 4}, "tall": {"k": 4, "d": 2}}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_matches_reference(shape, nesterov, softmax_problem, lr_multiplier):
    problem = softmax_problem(**SHAPES[shape])
    theta0 = np.random.default_rng(12).standard_normal(problem.k * (problem.d + 1))
    hp = {**MUON_HP, "nesterov": nesterov}
    got = run_submission("muon", hp, problem, 25, theta0)
    want = muon_reference(problem, hp, theta0, 25, lr_multiplier, KELLER_QUINTIC)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_newton_schulz_orthogonalizes():
    """Five Muon iterations leave the singular values near 1 (Keller's quintic lands in ~[0.7, 1.2])."""
    G = np.random.default_rng(0).standard_normal((16, 32))
    singular_values = np.linalg.svd(newton_schulz_reference(G, KELLER_QUINTIC), compute_uv=False)
    assert singular_values.min() > 0.6 and singular_values.max() < 1.25


def test_muon_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "muon", load_submission("muon").metadata["tuned_logreg"])


@pytest.mark.parametrize("kernel", [(3, 3), (3, 2)])
def test_conv_kernel_scale_follows_the_reference(kernel):
    """A 4-D conv kernel (out, in, kh, kw) is orthogonalised as its out x (in*kh*kw) view and scaled by
    sqrt(max(1, kh / kw)), the reference's factor (KellerJordan/Muon `muon_update` takes
    grad.size(-2) / grad.size(-1) of the 4-D tensor), not by the view's sqrt(max(1, out / (in*kh*kw))).
    Both kernels here have out > in*kh*kw, so the two factors differ."""
    from optimlib.muon import Muon

    out_channels, lr, mu, wd = 16, 0.1, 0.9, 0.01
    conv = torch.nn.Conv2d(1, out_channels, kernel, bias=False).double()
    rng = np.random.default_rng(5)
    W0 = rng.standard_normal(conv.weight.shape)
    G = rng.standard_normal(conv.weight.shape)
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(W0))
    optimizer = Muon(conv, lr=lr, momentum=mu, nesterov=True, weight_decay=wd)

    def closure():
        conv.weight.grad = torch.as_tensor(G.copy())
        return torch.zeros(())

    optimizer.step(closure)
    O = newton_schulz_reference((G + mu * G).reshape(out_channels, -1), KELLER_QUINTIC).reshape(G.shape)
    want = W0 * (1 - lr * wd) - lr * np.sqrt(max(1.0, kernel[0] / kernel[1])) * O
    np.testing.assert_allclose(conv.weight.detach().numpy(), want, rtol=1e-10, atol=1e-12)
