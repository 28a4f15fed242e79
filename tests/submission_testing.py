"""Shared pieces for submission reference tests: a small float64 logistic-regression problem with a
NumPy objective, and a driver that steps a submission through the real harness code path
(`load_submission` -> init_optimizer_state / update_params, the short path's closure included)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from harness.core.spec import Hyperparameters, LossType, MetricsLogger
from harness.core.submission import load_submission
from workloads.logreg.data import objective


class LogisticProblem:
    """Binary L2-regularised logistic regression, n x d, float64; theta = [w, b]."""

    family = "logreg"
    loss_type = LossType.SIGMOID_CROSS_ENTROPY
    preset = "tiny"
    device = torch.device("cpu")

    def __init__(self, n: int = 64, d: int = 5, l2: float = 1e-2, seed: int = 0, step_hint: int = 100,
                 name: str = "reference_logreg", algoperf_name: str | None = None):
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((n, d))
        self.y = (rng.random(n) < 1 / (1 + np.exp(-self.X @ rng.standard_normal(d)))).astype(np.int64)
        self.l2, self.d = l2, d
        self.step_hint = step_hint
        self.max_allowed_runtime_sec = 10.0
        self.eval_period_time_sec = 1.0
        self.name = name
        self.algoperf_name = algoperf_name
        self.metrics_logger = MetricsLogger()
        self.batch = {"inputs": torch.as_tensor(self.X), "targets": torch.as_tensor(self.y, dtype=torch.float64)}

    # ---- NumPy side (for the reference implementation) ----------------------------------------
    def loss_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        return objective(theta, self.X, self.y, 2, self.l2)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        Xb = np.hstack([self.X, np.ones((len(self.y), 1))])
        p = 1 / (1 + np.exp(-(Xb @ theta)))
        H = Xb.T @ (Xb * (p * (1 - p))[:, None]) / len(self.y)
        H[: self.d, : self.d] += self.l2 * np.eye(self.d)
        return H

    # ---- torch side (what the submission sees as the workload) --------------------------------
    def init_model_fn(self, rng: Any = 0, theta0: np.ndarray | None = None):
        model = torch.nn.Linear(self.d, 1).double()
        theta0 = np.zeros(self.d + 1) if theta0 is None else theta0
        with torch.no_grad():
            model.weight.copy_(torch.as_tensor(theta0[: self.d]).reshape(1, -1))
            model.bias.copy_(torch.as_tensor(theta0[self.d:]))
        self.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        self.model_params_types = {}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        self._l2_term = 0.5 * self.l2 * params.weight.pow(2).sum()
        return params(augmented_and_preprocessed_input_batch["inputs"]).squeeze(-1), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        """The `loss_type`'s per-example cross-entropy plus the l2 term kept by `model_fn` (subclasses
        with more classes only change `loss_type`)."""
        example_loss = (torch.nn.functional.cross_entropy if self.loss_type is LossType.SOFTMAX_CROSS_ENTROPY
                        else torch.nn.functional.binary_cross_entropy_with_logits)
        per_example = example_loss(logits_batch, label_batch, reduction="none") + self._l2_term
        return {"summed": per_example.sum(), "n_valid_examples": torch.tensor(float(len(per_example)), dtype=torch.float64),
                "per_example": per_example}


def theta_of(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()])


def run_submission(name: str, hyperparameters: Mapping[str, Any], problem: LogisticProblem, steps: int,
                   theta0: np.ndarray | None = None, seed: int = 0) -> list[np.ndarray]:
    """Parameters after each of `steps` full-batch steps of the named submission (float64)."""
    return step_submission(name, hyperparameters, problem, steps, theta0, lambda step: problem.batch, theta_of, seed)


def step_submission(name: str, hyperparameters: Mapping[str, Any], problem: LogisticProblem, steps: int,
                    theta0: Any, batch_at: Callable[[int], dict], snapshot: Callable[[Any], Any],
                    seed: int = 0) -> list:
    """`snapshot(model)` after each of `steps` steps of the named submission on `batch_at(step)`,
    through load_submission -> init_optimizer_state / update_params, as the runner calls them."""
    torch.manual_seed(seed)
    submission = load_submission(name)
    hp = Hyperparameters({**submission.default_hyperparameters(), **hyperparameters})
    model, model_state = problem.init_model_fn(seed, theta0)
    rng = np.random.default_rng(seed)
    state = submission.init_optimizer_state(problem, model, model_state, hp, rng)
    trajectory = []
    for step in range(steps):
        state, model, model_state = submission.update_params(
            problem, model, problem.model_params_types, model_state, hp, batch_at(step), problem.loss_type,
            state, [], step, rng)
        trajectory.append(snapshot(model))
    return trajectory
