import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.memory import state_bytes
from optimlib.schedules import warmup_cosine
from submissions.subset_norm.submission import AdamSN

TUNED = {}  # the defaults are the tuned point


def subset_norm_step(w, g, m, v, t, lr, beta1, beta2, eps, wd):
    """One AdamW-SN step on a matrix (or vector) w: the subsets are the slices along the larger dimension."""
    if w.ndim == 2:
        axis = 1 if w.shape[0] >= w.shape[1] else 0
        v = beta2 * v + (1 - beta2) * (g**2).sum(axis=axis, keepdims=True)
    else:
        v = beta2 * v + (1 - beta2) * g**2
    m = beta1 * m + (1 - beta1) * g if beta1 > 0 else g
    step = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
    w = w * (1 - lr * wd) - step * m / (np.sqrt(v) + eps)
    return w, m, v


def reference(problem, hp, steps):
    w, b = np.zeros((1, problem.d)), np.zeros(1)
    mw, vw, mb, vb = np.zeros_like(w), np.zeros((1, problem.d)), np.zeros(1), np.zeros(1)
    out = []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * warmup_cosine(t - 1, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(np.concatenate([w.ravel(), b]))
        args = (lr, hp["beta1"], hp["beta2"], hp["epsilon"], hp["weight_decay"])
        w, mw, vw = subset_norm_step(w, g[: problem.d].reshape(1, -1), mw, vw, t, *args)
        b, mb, vb = subset_norm_step(b, g[problem.d:], mb, vb, t, *args)
        out.append(np.concatenate([w.ravel(), b]))
    return out


@pytest.mark.parametrize("beta1", [0.9, 0.0])
def test_matches_numpy_reference_on_logistic_problem(beta1):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.05, "beta1": beta1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2,
          "warmup_factor": 0.1}
    got = run_submission("subset_norm", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


@pytest.mark.parametrize("shape", [(6, 3), (3, 6)])
def test_matrix_subsets_match_numpy(shape):
    """Both orientations of a matrix: one second-moment entry per slice along the larger dimension."""
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((8, shape[0])), rng.standard_normal((8, shape[1]))
    W = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = AdamSN([W], lr=0.1, betas=(0.9, 0.999), weight_decay=0.0)
    w, m, v = np.zeros(shape), np.zeros(shape), np.zeros((shape[0], 1) if shape[0] >= shape[1] else (1, shape[1]))

    def closure():
        opt.zero_grad()
        loss = 0.5 * (torch.as_tensor(A) @ W - torch.as_tensor(B)).pow(2).sum()
        loss.backward()
        return loss

    for t in range(1, 21):
        opt.step(closure)
        w, m, v = subset_norm_step(w, A.T @ (A @ w - B), m, v, t, 0.1, 0.9, 0.999, 1e-8, 0.0)
        np.testing.assert_allclose(W.detach().numpy(), w, rtol=1e-5, atol=1e-12)
    assert opt.state[W]["subset_second_moment"].numel() == max(shape)


def test_state_is_smaller_than_adams():
    model = torch.nn.Linear(256, 64)
    opt = AdamSN(model.parameters(), lr=1e-3)
    model(torch.randn(4, 256)).sum().backward()
    opt.step(lambda: None)
    adam_bytes = 2 * sum(p.nbytes for p in model.parameters())
    # momentum (full) + one second-moment entry per column of the 64 x 256 weight + the bias's two moments
    assert state_bytes(opt) == 4 * (64 * 256 + 256 + 2 * 64)
    assert state_bytes(opt) < 0.51 * adam_bytes


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("subset_norm", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
