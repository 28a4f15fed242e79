import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine

METADATA = json.loads((Path(__file__).parents[2] / "submissions/uba/metadata.json").read_text())


def uba_multiplier(t, hp, step_hint):
    """Tang et al. (2025), the UBA schedule: eta_min + (eta_max - eta_min) 2c/(2 phi + (2 - phi) c),
    c = 1 + cos(pi t / T), over the budget T after a linear warm-up of warmup_factor * T steps."""
    budget = round(hp["step_hint_factor"] * step_hint)
    warmup = int(hp["warmup_factor"] * budget)
    if t < warmup:
        return (t + 1) / warmup
    T = budget - warmup
    c = 1 + np.cos(np.pi * min(1.0, (t - warmup) / T))
    phi, low = hp["phi"], hp["final_lr_ratio"]
    return low + (1 - low) * 2 * c / (2 * phi + (2 - phi) * c)


def reference(problem, hp, steps):
    """The base optimizer (torch semantics: SGD with coupled L2 and buf = mu buf + g, or AdamW) at
    lr = learning_rate * UBA multiplier."""
    theta = np.zeros(problem.d + 1)
    buf, m, v = None, np.zeros_like(theta), np.zeros_like(theta)
    beta1 = 1 - hp["one_minus_beta1"]
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * uba_multiplier(t, hp, problem.step_hint)
        _, g = problem.loss_and_grad(theta)
        if hp["base_optimizer"] == "sgd_momentum":
            g = g + hp["weight_decay"] * theta
            buf = g if buf is None else beta1 * buf + g
            theta = theta - lr * buf
        else:
            theta = theta * (1 - lr * hp["weight_decay"])
            m = beta1 * m + (1 - beta1) * g
            v = hp["beta2"] * v + (1 - hp["beta2"]) * g * g
            m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - hp["beta2"] ** (t + 1))
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + hp["epsilon"])
        out.append(theta)
    return out


@pytest.mark.parametrize("base, phi, low", [("sgd_momentum", 0.5, 0.0), ("adamw", 5.0, 0.1)])
def test_matches_numpy_reference(base, phi, low):
    problem = LogisticProblem(step_hint=30)
    hp = {"base_optimizer": base, "learning_rate": 0.5 if base == "sgd_momentum" else 0.05, "one_minus_beta1": 0.1,
          "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2, "phi": phi, "final_lr_ratio": low,
          "warmup_factor": 0.1, "step_hint_factor": 1.0}
    got = run_submission("uba", hp, problem, steps=35)  # past the budget: the rate stays at eta_min
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 35))):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"step {step}")


def test_phi_two_is_cosine_and_phi_orders_the_decay():
    from submissions.uba.submission import uba

    T = 1000
    for t in range(0, T + 1, 37):
        assert uba(t, T, 2.0) == pytest.approx(warmup_cosine(t, T, 0.0), abs=1e-12)
    assert uba(0, T, 0.3) == pytest.approx(1.0) and uba(T, T, 0.3) == pytest.approx(0.0, abs=1e-12)
    assert uba(T, T, 3.0, final_lr_ratio=0.2) == pytest.approx(0.2)
    values = [uba(t, T, 0.5) for t in range(T + 1)]
    assert all(a >= b for a, b in zip(values, values[1:])), "UBA must decay monotonically"
    # smaller phi keeps the rate higher for longer (mid-run: 1 / (1 + phi / 2))
    assert uba(T // 2, T, 0.5) == pytest.approx(1 / 1.25) and uba(T // 2, T, 8.0) == pytest.approx(1 / 5)
    assert uba(T // 4, T, 0.5) > uba(T // 4, T, 2.0) > uba(T // 4, T, 8.0)


@pytest.mark.parametrize("bad, match", [({"phi": 0.0}, "phi"), ({"phi": -1.0}, "phi"),
                                        ({"final_lr_ratio": 1.5}, "final_lr_ratio"),
                                        ({"base_optimizer": "lion"}, "base_optimizer='lion'; valid: \\['adamw', 'sgd_momentum'\\]")])
def test_rejects_bad_hyperparameters(bad, match):
    with pytest.raises(ValueError, match=match):
        run_submission("uba", bad, LogisticProblem(), steps=1)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("uba", "logreg_wine", METADATA["tuned_logreg"])
    assert record.status == "reached", record.error or record.best_metric
