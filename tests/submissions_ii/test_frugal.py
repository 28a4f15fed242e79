import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.memory import state_bytes
from optimlib.schedules import warmup_cosine
from submissions.frugal.submission import Frugal

TUNED = json.loads((Path(__file__).parents[2] / "submissions/frugal/metadata.json").read_text())["tuned_logreg"]


def adam(x, g, st, t, lr, b1, b2, eps):
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["v"] = b2 * st["v"] + (1 - b2) * g**2
    return x - lr / (1 - b1**t) * st["m"] / (np.sqrt(st["v"] / (1 - b2**t)) + eps)


def reference(problem, hp, steps, seed=0):
    """FRUGAL (Zmushko et al., Alg. 1) with column-wise random subspaces for the weight, AdamW for the bias."""
    generator = torch.Generator().manual_seed(seed)
    w, b = np.zeros(problem.d), np.zeros(1)
    bias_state, t_bias = {"m": np.zeros(1), "v": np.zeros(1)}, 0
    args = (hp["beta1"], hp["beta2"], hp["epsilon"])
    out = []
    for k in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(k, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(np.concatenate([w, b]))
        gw, gb = g[: problem.d], g[problem.d:]
        if k % hp["update_gap"] == 0:  # new subspace, fresh Adam state on it
            chosen = max(1, round(hp["density"] * problem.d))
            S = np.sort(torch.randperm(problem.d, generator=generator)[:chosen].numpy())
            w_state, t_w = {"m": np.zeros(chosen), "v": np.zeros(chosen)}, 0
        free = np.setdiff1d(np.arange(problem.d), S)
        w = w * (1 - lr * hp["weight_decay"])
        b = b * (1 - lr * hp["weight_decay"])
        rule = hp["inactive_update_rule"]
        if rule != "no":
            w[free] -= lr * hp["inactive_lr_scale"] * (np.sign(gw[free]) if rule == "sign_sgd" else gw[free])
        t_w += 1
        w[S] = adam(w[S], gw[S], w_state, t_w, lr, *args)
        t_bias += 1
        b = adam(b, gb, bias_state, t_bias, lr, *args)
        out.append(np.concatenate([w, b]))
    return out


@pytest.mark.parametrize("rule", ["sign_sgd", "sgd", "no"])
def test_matches_numpy_reference(rule):
    problem = LogisticProblem(d=8)
    hp = {"learning_rate": 0.05, "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2,
          "density": 0.25, "update_gap": 7, "inactive_update_rule": rule, "inactive_lr_scale": 0.3,
          "warmup_factor": 0.1}
    got = run_submission("frugal", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_state_is_a_quarter_of_adams():
    model = torch.nn.Linear(256, 64, bias=False)
    opt = Frugal(model.parameters(), lr=1e-3, density=0.25)
    model(torch.randn(4, 256)).sum().backward()
    opt.step(lambda: None)
    adam_bytes = 2 * sum(p.nbytes for p in model.parameters())
    # two moments on 64 of the 256 columns, plus the 64 column indices (int64)
    assert state_bytes(opt) == 2 * 4 * 64 * 64 + 8 * 64
    assert state_bytes(opt) < 0.26 * adam_bytes


def test_rejects_unknown_rule():
    with pytest.raises(ValueError, match="inactive_update_rule='adam'; valid"):
        Frugal([torch.zeros(2, 2)], lr=1.0, inactive_update_rule="adam")


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("frugal", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
