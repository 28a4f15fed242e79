import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from submission_testing import LogisticProblem, run_submission

from harness.core.spec import Hyperparameters
from harness.core.submission import load_submission

TUNED = {'learning_rate': 0.5, 'eta': 0.3}  # metadata tuned_logreg


def per_example_gradients(problem, theta):
    """Rows: gradient of example i's loss (its logistic loss plus the shared l2 term), NumPy."""
    Xb = np.hstack([problem.X, np.ones((len(problem.y), 1))])
    residual = expit(Xb @ theta) - problem.y
    rows = residual[:, None] * Xb
    rows[:, : problem.d] += problem.l2 * theta[: problem.d]
    return rows


def reference(problem, hp, steps, batch_size=64, cap=10**9):
    """AdAdaGrad (Lau et al., Alg. 1/2) on the full batch: test -> next batch size, AdaGrad(-Norm) step."""
    theta = np.zeros(problem.d + 1)
    v = np.zeros_like(theta) if hp["optimizer"] == "adagrad" else 0.0
    out, sizes = [], []
    for _ in range(steps):
        J = per_example_gradients(problem, theta)
        g = J.mean(axis=0)
        b, gg = len(J), g @ g
        if hp["test"] == "norm":
            wanted = ((J - g) ** 2).sum() / (b - 1) / (hp["eta"] ** 2 * gg)
        else:
            wanted = ((J @ g - gg) ** 2).sum() / (b - 1) / (hp["eta"] ** 2 * gg**2)
        sizes.append(batch_size)
        batch_size = min(max(batch_size, math.ceil(wanted)), cap)
        v = v + (g**2 if hp["optimizer"] == "adagrad" else gg)
        theta = theta - hp["learning_rate"] * g / (np.sqrt(v) + hp["epsilon"])
        out.append(theta)
    return out, sizes + [batch_size]


@pytest.mark.parametrize("test, optimizer", [("norm", "adagrad_norm"), ("inner_product", "adagrad"),
                                             ("norm", "adagrad")])
def test_matches_numpy_reference(test, optimizer):
    problem = LogisticProblem()
    hp = {"test": test, "optimizer": optimizer, "learning_rate": 0.5, "eta": 0.3, "initial_batch_size": 64,
          "max_batch_multiplier": 16, "epsilon": 1e-10}
    got = run_submission("adadagrad", hp, problem, steps=25)
    want, _ = reference(problem, hp, 25)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


@pytest.mark.parametrize("test", ["norm", "inner_product"])
def test_batch_size_follows_the_test(test, monkeypatch):
    """The state's batch size after each step is the reference's: it grows and never shrinks.
    Per-example gradients in passes of 10 rows (6 parameters, 64 examples: 7 passes, the last short)."""
    problem = LogisticProblem()
    submission = load_submission("adadagrad")
    monkeypatch.setattr(submission.module, "JACOBIAN_BUDGET", 60)
    hp = Hyperparameters({**submission.default_hyperparameters(), "test": test, "initial_batch_size": 64,
                          "eta": 0.3, "learning_rate": 0.5})
    model, model_state = problem.init_model_fn()
    state = submission.init_optimizer_state(problem, model, model_state, hp, None)
    state["max_batch_size"] = 1000  # set by data_selection from the stream's batch size in a real run
    sizes = []
    for step in range(25):
        state, model, model_state = submission.update_params(
            problem, model, {}, model_state, hp, problem.batch, problem.loss_type, state, [], step, None)
        sizes.append(state["batch_size"])
    _, want = reference(problem, {**hp}, 25, cap=1000)
    assert sizes == want[1:]
    assert sizes == sorted(sizes) and sizes[-1] > 64  # it grows and never shrinks


def test_data_selection_serves_any_batch_size_in_stream_order():
    submission = load_submission("adadagrad")
    stream = iter([{"inputs": torch.arange(10 * i, 10 * i + 10).float()[:, None], "targets": torch.zeros(10)}
                   for i in range(10)])
    hp = Hyperparameters({"max_batch_multiplier": 4})
    state = {"batch_size": 3, "buffer": None, "max_batch_size": None}
    served = []
    for size in (3, 3, 25, 7):
        state["batch_size"] = size
        batch = submission.data_selection(None, stream, state, None, None, hp, 0, None)
        assert len(batch["inputs"]) == size
        served += batch["inputs"].ravel().tolist()
    assert served == list(range(38))  # no example skipped or repeated
    assert state["max_batch_size"] == 40


def test_rejects_unknown_test():
    with pytest.raises(ValueError, match="test='variance'; valid"):
        run_submission("adadagrad", {"test": "variance"}, LogisticProblem(), steps=1)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("adadagrad", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric
