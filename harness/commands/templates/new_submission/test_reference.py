"""Reference test of NAME: its optimizer against the update rule written out in NumPy, on a small
least-squares problem, step by step. Run it with `python -m pytest path/to/NAME/test_reference.py`.
When you change the optimizer, change `reference_step` to your paper's equations (a counted method on
the leaderboard needs a reference test)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
HYPERPARAMETERS = json.loads((HERE / "metadata.json").read_text())["defaults"]


class Hyperparameters(dict):
    __getattr__ = dict.__getitem__


def load_submission():
    spec = importlib.util.spec_from_file_location("submission_under_test", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_step(w, buffer, grad, lr, momentum, weight_decay):
    """Heavy-ball SGD as torch.optim.SGD defines it: b = momentum b + (g + wd w); w = w - lr b."""
    grad = grad + weight_decay * w
    buffer = grad if buffer is None else momentum * buffer + grad
    return w - lr * buffer, buffer


def test_matches_the_reference_update_rule():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 5)), rng.normal(size=32)
    model = torch.nn.Linear(5, 1, bias=False).double()
    torch.nn.init.zeros_(model.weight)
    hp = Hyperparameters(HYPERPARAMETERS)
    optimizer = load_submission().create_optimizer(model, hp, workload=None)
    w, buffer = np.zeros(5), None
    for _ in range(20):
        optimizer.zero_grad()
        loss = 0.5 * ((model(torch.from_numpy(X)).squeeze(-1) - torch.from_numpy(y)) ** 2).mean()
        loss.backward()
        optimizer.step()
        grad = X.T @ (X @ w - y) / len(y)
        w, buffer = reference_step(w, buffer, grad, hp.learning_rate, 1 - hp.one_minus_beta1, hp.weight_decay)
        np.testing.assert_allclose(model.weight.detach().numpy().ravel(), w, rtol=1e-10, atol=1e-12)
