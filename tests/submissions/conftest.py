"""Shared pieces for the per-submission tests: a matrix-shaped problem for methods that treat
2-D weights specially (Shampoo, Muon), the reference learning-rate multipliers, and the
reaches-the-target check on a logistic-regression `cpu` workload."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.core.results import TrialRecord
from harness.core.spec import LossType
from submission_testing import LogisticProblem


class SoftmaxProblem(LogisticProblem):
    """Multinomial L2-regularised logistic regression, float64; theta = [W.ravel() (k x d), b]."""

    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    def __init__(self, n: int = 48, d: int = 4, k: int = 3, l2: float = 1e-2, seed: int = 0, step_hint: int = 100):
        super().__init__(n=n, d=d, l2=l2, seed=seed, step_hint=step_hint, name="reference_softmax")
        rng = np.random.default_rng(seed + 1)
        self.k = k
        self.y = (self.X @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
        self.batch = {"inputs": torch.as_tensor(self.X), "targets": torch.as_tensor(self.y)}

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return theta[: self.k * self.d].reshape(self.k, self.d), theta[self.k * self.d:]

    def loss_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = self.split(theta)
        logits = self.X @ W.T + b
        logits -= logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        n = len(self.y)
        loss = -log_probs[np.arange(n), self.y].mean() + 0.5 * self.l2 * (W**2).sum()
        residual = np.exp(log_probs)
        residual[np.arange(n), self.y] -= 1
        grad_W = residual.T @ self.X / n + self.l2 * W
        return float(loss), np.concatenate([grad_W.ravel(), residual.mean(axis=0)])

    def init_model_fn(self, rng=0, theta0: np.ndarray | None = None):
        model = torch.nn.Linear(self.d, self.k).double()
        theta0 = np.zeros(self.k * (self.d + 1)) if theta0 is None else theta0
        W, b = self.split(theta0)
        with torch.no_grad():
            model.weight.copy_(torch.as_tensor(W))
            model.bias.copy_(torch.as_tensor(b))
        self.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        self.model_params_types = {}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        self._l2_term = 0.5 * self.l2 * params.weight.pow(2).sum()
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state


def cosine_multiplier(step: int, horizon: int, warmup_fraction: float) -> float:
    """Linear warm-up over warmup_fraction * horizon steps (the first step already moves), then cosine to 0."""
    warmup = int(warmup_fraction * horizon)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, horizon - warmup))))


@pytest.fixture
def softmax_problem():
    return SoftmaxProblem


@pytest.fixture
def lr_multiplier():
    return cosine_multiplier


@pytest.fixture
def reach_target(cpu_trial):
    """Run `name` on a cpu-preset workload (defaults, or the given hyperparameters), capped at max_steps,
    and assert that it reaches the target."""

    def run(workload: str, name: str, hyperparameters: dict | None = None, max_steps: int = 5000) -> TrialRecord:
        record = cpu_trial(name, workload, hyperparameters, max_steps)
        assert record.status == "reached", (record.status, record.error, record.best_metric)
        return record

    return run


@pytest.fixture
def evaluate_then_resume():
    """run(name, hyperparameters, problem, steps, theta0) -> (evaluated, resumed): the parameters
    that `prepare_for_eval` hands to evaluation after `steps` steps, and the parameters after one
    more training step (which must continue from the training iterate, not the evaluated one)."""
    from harness.core.spec import Hyperparameters
    from harness.core.submission import load_submission
    from submission_testing import theta_of

    def run(name, hyperparameters, problem, steps, theta0):
        torch.manual_seed(0)
        submission = load_submission(name)
        hp = Hyperparameters({**submission.default_hyperparameters(), **hyperparameters})
        model, model_state = problem.init_model_fn(0, theta0)
        rng = np.random.default_rng(0)
        state = submission.init_optimizer_state(problem, model, model_state, hp, rng)

        def train_step(step):
            return submission.update_params(problem, model, {}, model_state, hp, problem.batch, problem.loss_type,
                                            state, [], step, rng)

        for step in range(steps):
            state, model, model_state = train_step(step)
        state, model, model_state = submission.prepare_for_eval(
            problem, model, {}, model_state, hp, problem.loss_type, state, [], steps, rng)
        evaluated = theta_of(model)
        state, model, model_state = train_step(steps)
        return evaluated, theta_of(model)

    return run
