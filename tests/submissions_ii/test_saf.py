import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import LossType

METADATA = json.loads((Path(__file__).parents[2] / "submissions/saf/metadata.json").read_text())


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference(problem, hp, steps):
    """MESA (Du et al., 2022, SAF's memory-free variant) on binary logistic regression:
    loss = f(w) + lambda tau^2 mean_i KL(Bern(s(z_ema_i / tau)) || Bern(s(z_i / tau))), whose gradient in
    the logit z_i is lambda tau (s(z_i / tau) - s(z_ema_i / tau)) / n; SGD-momentum (torch semantics) with
    warm-up + cosine; then w_ema <- d w_ema + (1 - d) w. The KL term starts at kl_start_fraction * step_hint."""
    Xb = np.hstack([problem.X, np.ones((len(problem.y), 1))])
    theta = np.zeros(problem.d + 1)
    ema, buf, out = theta.copy(), None, []
    tau, lam = hp["temperature"], hp["kl_weight"]
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        if t >= hp["kl_start_fraction"] * problem.step_hint:
            z, z_ema = Xb @ theta, Xb @ ema
            g = g + lam * tau * Xb.T @ (sigmoid(z / tau) - sigmoid(z_ema / tau)) / len(z)
        g = g + hp["weight_decay"] * theta
        buf = g if buf is None else (1 - hp["one_minus_beta1"]) * buf + g
        theta = theta - lr * buf
        ema = hp["ema_decay"] * ema + (1 - hp["ema_decay"]) * theta
        out.append(theta)
    return out


@pytest.mark.parametrize("kl_start_fraction", [0.0, 0.08])
def test_matches_numpy_reference(kl_start_fraction):
    problem = LogisticProblem()
    hp = {"base_optimizer": "sgd_momentum", "learning_rate": 1.0, "one_minus_beta1": 0.1, "weight_decay": 1e-3,
          "warmup_factor": 0.1, "kl_weight": 0.5, "temperature": 2.0, "ema_decay": 0.8,
          "kl_start_fraction": kl_start_fraction}
    got = run_submission("saf", hp, problem, steps=25)
    want = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"step {step}")
    # the trajectory term changes the path (it is not silently off)
    plain = reference(problem, {**hp, "kl_weight": 0.0}, 25)
    assert np.abs(plain[-1] - want[-1]).max() > 1e-4


def test_softmax_trajectory_loss_is_tau_squared_kl():
    from submissions.saf.submission import trajectory_loss

    rng = np.random.default_rng(1)
    s, t = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    tau = 3.0

    def softmax(a):
        e = np.exp(a - a.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(t / tau), softmax(s / tau)
    want = tau**2 * np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))
    got = trajectory_loss(torch.tensor(s), torch.tensor(t), LossType.SOFTMAX_CROSS_ENTROPY, tau)
    assert float(got) == pytest.approx(want, rel=1e-12)
    # masked mean over examples (tokens) and zero at teacher == student
    w = np.array([1, 1, 0, 1, 0, 1.0])
    kl = np.sum(p * (np.log(p) - np.log(q)), -1)
    got = trajectory_loss(torch.tensor(s), torch.tensor(t), LossType.SOFTMAX_CROSS_ENTROPY, tau, torch.tensor(w))
    assert float(got) == pytest.approx(tau**2 * (kl * w).sum() / w.sum(), rel=1e-12)
    same = trajectory_loss(torch.tensor(s), torch.tensor(s), LossType.SOFTMAX_CROSS_ENTROPY, tau)
    assert abs(float(same)) < 1e-12


def test_regression_workloads_are_unsupported():
    from harness.core.spec import UnsupportedWorkloadError
    from submissions.saf.submission import trajectory_loss

    with pytest.raises(UnsupportedWorkloadError, match="loss type"):
        trajectory_loss(torch.zeros(3), torch.zeros(3), LossType.MEAN_SQUARED_ERROR, 1.0)


@pytest.mark.parametrize("bad, match", [({"base_optimizer": "lion"}, "base_optimizer='lion'; valid: \\['adamw', 'sgd_momentum'\\]"),
                                        ({"temperature": 0.0}, "temperature"), ({"ema_decay": 1.0}, "ema_decay"),
                                        ({"kl_weight": -0.1}, "kl_weight")])
def test_rejects_bad_hyperparameters(bad, match):
    with pytest.raises(ValueError, match=match):
        run_submission("saf", bad, LogisticProblem(), steps=1)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("saf", "logreg_wine", METADATA["tuned_logreg"])
    assert record.status == "reached", record.error or record.best_metric


def test_a_diverging_run_is_recorded_diverged_by_the_runner(cpu_trial):
    """The submission reads no loss on the host; the runner finds the non-finite logged loss at the next
    evaluation and records the trial diverged."""
    record = cpu_trial("saf", "logreg_wine", {"learning_rate": 1e38}, max_steps=30)
    assert record.status == "diverged", record
