"""Shared pieces of the oracle tests: each drives a submission and its method's official (or best-known)
implementation side by side on the same float64 MLP, from the same initial weights, on the same
mini-batches, and compares the parameters after every step.

The submission side is the suite's one driver (`submission_testing.step_submission`: load_submission ->
init_optimizer_state / update_params, the short path's closure and schedule included). The reference
side is a plain training loop around the package's optimizer; its learning rate is multiplied, step by
step, by the submission's own `schedule` (the schedules have their own tests in tests/submissions*), so
what an oracle compares is the update rule.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pytest
import torch

from harness.core.spec import Hyperparameters, LossType
from harness.core.submission import load_submission
from submission_testing import LogisticProblem, step_submission

STEPS = 50

# Methods with Hessian-vector products take them from p.grad after loss.backward(create_graph=True) (the
# harness closure's create_graph=True, SophiaH's and Adahessian's reference loops); torch warns about the
# parameter-gradient cycle that makes. Their test modules set `pytestmark = IGNORE_CREATE_GRAPH_WARNING`.
IGNORE_CREATE_GRAPH_WARNING = pytest.mark.filterwarnings(
    "ignore:Using backward\\(\\) with create_graph=True:UserWarning")


class MLPProblem(LogisticProblem):
    """Softmax classification with a d -> h -> h -> k tanh MLP (nn.Linear layers), float64; the
    mini-batches of `batch` rows are cycled step by step. The weights start from a fixed generator,
    so every call of `init_model_fn` gives the same model."""

    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    def __init__(self, n: int = 64, d: int = 6, h: int = 8, k: int = 3, batch: int = 16, seed: int = 0,
                 step_hint: int = STEPS):
        super().__init__(n=n, d=d, l2=0.0, seed=seed, step_hint=step_hint, name="oracle_mlp")
        rng = np.random.default_rng(seed + 7)
        self.h, self.k, self.seed = h, k, seed
        self.y = (self.X @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
        self.batches = [np.arange(i, i + batch) for i in range(0, n, batch)]

    def batch_at(self, step: int) -> dict[str, torch.Tensor]:
        rows = self.batches[step % len(self.batches)]
        return {"inputs": torch.as_tensor(self.X[rows]), "targets": torch.as_tensor(self.y[rows])}

    def init_model_fn(self, rng: Any = 0, theta0: Any = None):
        generator = torch.Generator().manual_seed(self.seed)
        layers = [torch.nn.Linear(self.d, self.h), torch.nn.Tanh(), torch.nn.Linear(self.h, self.h), torch.nn.Tanh(),
                  torch.nn.Linear(self.h, self.k)]
        model = torch.nn.Sequential(*layers).double()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64) / np.sqrt(p.shape[-1]))
        self.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        self.model_params_types = {}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        per_example = torch.nn.functional.cross_entropy(logits_batch, label_batch, reduction="none")
        count = torch.tensor(float(len(per_example)), dtype=torch.float64)
        return {"summed": per_example.sum(), "n_valid_examples": count, "per_example": per_example}

    def mean_loss(self, model: torch.nn.Module, step: int) -> torch.Tensor:
        batch = self.batch_at(step)
        return torch.nn.functional.cross_entropy(model(batch["inputs"]), batch["targets"])


def flat_parameters(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def submission_hyperparameters(name: str, hyperparameters: Mapping[str, Any]) -> Hyperparameters:
    """What the driver hands the submission: its defaults updated by the test's values."""
    return Hyperparameters({**load_submission(name).default_hyperparameters(), **hyperparameters})


def submission_trajectory(name: str, hyperparameters: Mapping[str, Any], problem: MLPProblem,
                          steps: int = STEPS) -> np.ndarray:
    """The flat parameters after each step of the named submission (steps x #params)."""
    return np.stack(step_submission(name, hyperparameters, problem, steps, None, problem.batch_at, flat_parameters))


def submission_schedule(name: str, hyperparameters: Mapping[str, Any], problem: MLPProblem) -> Callable[[int], float]:
    """The learning-rate multiplier the harness applies to the submission at each step (1 without a schedule)."""
    schedule = getattr(load_submission(name).module, "schedule", None)
    if schedule is None:
        return lambda step: 1.0
    hp = submission_hyperparameters(name, hyperparameters)
    return lambda step: float(schedule(step, problem.step_hint, hp))


def reference_trajectory(problem: MLPProblem, make_optimizer: Callable[[torch.nn.Module], Any],
                         multiplier: Callable[[int], float] = lambda step: 1.0, steps: int = STEPS,
                         create_graph: bool = False,
                         step_with: Callable[[Any, Callable[[], torch.Tensor]], Any] | None = None) -> np.ndarray:
    """The flat parameters after each step of the reference optimizer on the same model, batches and
    learning-rate multipliers. `make_optimizer(model)` may return a tuple of optimizers over disjoint
    parameters (Muon for matrices + AdamW for the rest): the first steps with the closure, the others
    on the gradients it left. `create_graph` keeps the graph for optimizers that take Hessian-vector
    products from the gradients; `step_with(optimizer, closure)` replaces `optimizer.step(closure)` for
    references whose step is called differently (wrappers, two-pass methods, `closure(backward=False)`
    for one that differentiates the loss itself). A reference that is not a torch Optimizer exposes
    an empty `param_groups` and runs at a constant rate."""
    model, _ = problem.init_model_fn()
    # A reference that draws from torch's global generator (Hutchinson probes) starts from seed 0, the
    # seed the driver's submissions give their own generators; building the layers above drew from it.
    torch.manual_seed(0)
    made = make_optimizer(model)
    optimizers = made if isinstance(made, tuple) else (made,)
    groups = [group for optimizer in optimizers for group in optimizer.param_groups]
    base_lrs = [group["lr"] for group in groups]
    trajectory = []
    for step in range(steps):
        for group, base_lr in zip(groups, base_lrs):
            group["lr"] = base_lr * multiplier(step)

        def closure(step=step, backward=True):
            model.zero_grad()
            loss = problem.mean_loss(model, step)
            if backward:
                loss.backward(create_graph=create_graph)
            return loss

        if step_with is None:
            optimizers[0].step(closure)
        else:
            step_with(optimizers[0], closure)
        for optimizer in optimizers[1:]:
            optimizer.step()
        trajectory.append(flat_parameters(model))
    return np.stack(trajectory)


def max_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(ours - reference).max())


def assert_trajectories_agree(ours: np.ndarray, reference: np.ndarray, atol: float, min_travel: float = 0.05) -> float:
    """Every step's parameters agree to `atol` (absolute, over all parameters and steps); the
    largest parameter must move at least `min_travel` between the first and the last step, so that
    agreement means something.
    Returns the measured largest difference."""
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    assert np.isfinite(ours).all() and np.isfinite(reference).all()
    travel = float(np.abs(reference[-1] - reference[0]).max())
    assert travel > min_travel, f"the reference hardly moved ({travel:.2e}): the comparison would be vacuous"
    difference = max_difference(ours, reference)
    worst_step = int(np.abs(ours - reference).max(axis=1).argmax())
    assert difference <= atol, f"max |ours - reference| = {difference:.3e} > {atol:.1e} (worst at step {worst_step})"
    return difference
