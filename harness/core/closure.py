"""The short submission path: a `torch.optim.Optimizer` factory plus a schedule, adapted to
AlgoPerf's `init_optimizer_state` / `update_params`.

Every step calls `optimizer.step(closure)`. The closure re-evaluates the training loss on the
step's batch as often as the optimizer asks, so methods that need more than one gradient (SAM),
Hessian-vector products (AdaHessian, Sophia-H: `closure(create_graph=True)`), losses on labels
sampled from the model (Sophia-G: `closure(labels="sampled")`), or no backward pass at all
(zeroth-order methods: `closure(backward=False)`) fit without harness changes.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from harness.core.spec import ForwardPassMode, LossType


# The short path logs and checks the training loss every LOSS_EVERY steps: reading a loss waits for the
# device, and a row per step of a 0.5 ms logistic step would be megabytes of train.jsonl per trial.
LOSS_EVERY = 8


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def sample_labels(logits: torch.Tensor, loss_type: LossType, generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels drawn from the model's own predictive distribution (Gauss-Newton-Bartlett estimators)."""
    if loss_type is LossType.SOFTMAX_CROSS_ENTROPY:
        probs = torch.softmax(logits.float().reshape(-1, logits.shape[-1]), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])
    if loss_type is LossType.SIGMOID_CROSS_ENTROPY:
        return torch.bernoulli(torch.sigmoid(logits.float()), generator=generator).to(logits.dtype)
    if loss_type is LossType.MEAN_SQUARED_ERROR:
        noise = torch.randn(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        return logits + noise
    raise ValueError(f"cannot sample labels for loss type {loss_type}; valid: softmax/sigmoid CE, MSE")


class TrainingClosure:
    """Re-evaluates the mean training loss of one batch; an optimizer calls it via `step(closure)`."""

    def __init__(self, workload, model: torch.nn.Module, model_state: Any, batch: dict, rng: Any,
                 hyperparameters) -> None:
        self.workload = workload
        self.model = model
        self.model_state = model_state
        self.batch = batch
        self.rng = rng
        self.dropout_rate = hyperparameters.get("dropout_rate")
        self.label_smoothing = hyperparameters.get("label_smoothing", 0.0)
        self.calls = 0
        self.last_loss: torch.Tensor | None = None
        self.last_logits: torch.Tensor | None = None

    def __call__(self, backward: bool = True, create_graph: bool = False, labels: str = "data",
                 update_batch_norm: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Forward the batch and return the mean loss; with `backward`, zero and fill `.grad`.

        labels: "data" uses the batch's targets, "sampled" draws them from the model's output
        (with `generator` when given, so an optimizer can make its draws reproducible).
        """
        if labels not in ("data", "sampled"):
            raise ValueError(f"labels={labels!r}; valid: 'data', 'sampled'")
        self.calls += 1
        if backward:
            self.model.zero_grad(set_to_none=True)
        # Only the math attention kernel has a double backward (the fused ones do not), and the
        # kernel is chosen at forward time; Hessian-vector products need the graph kept.
        kernels = sdpa_kernel(SDPBackend.MATH) if create_graph else contextlib.nullcontext()
        with torch.set_grad_enabled(backward), kernels:
            logits, self.model_state = self.workload.model_fn(
                params=self.model,
                augmented_and_preprocessed_input_batch=self.batch,
                model_state=self.model_state,
                mode=ForwardPassMode.TRAIN,
                rng=self.rng,
                update_batch_norm=update_batch_norm,
                dropout_rate=self.dropout_rate,
            )
            targets = self.batch["targets"]
            if labels == "sampled":
                targets = sample_labels(logits.detach(), self.workload.loss_type, generator)
            out = self.workload.loss_fn(targets, logits, self.batch.get("weights"), self.label_smoothing)
            loss = out["summed"] / out["n_valid_examples"]
            if backward:
                loss.backward(create_graph=create_graph)
        self.last_logits = logits.detach()
        if labels == "data":
            self.last_loss = loss.detach()
        return loss if create_graph else loss.detach()


class OptimizerAdapter:
    """Turns `create_optimizer` + `schedule` into AlgoPerf's init_optimizer_state / update_params."""

    def __init__(self, create_optimizer: Callable[..., torch.optim.Optimizer],
                 schedule: Callable[[int, int, Any], float] | None) -> None:
        self.create_optimizer = create_optimizer
        self.schedule = schedule

    def init_optimizer_state(self, workload, model_params, model_state, hyperparameters, rng):
        optimizer = self.create_optimizer(model_params, hyperparameters, workload)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"create_optimizer must return a torch.optim.Optimizer, got {type(optimizer).__name__}")
        return {"optimizer": optimizer, "base_lrs": [group["lr"] for group in optimizer.param_groups]}

    def update_params(self, workload, current_param_container, current_params_types, model_state,
                      hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                      rng, train_state=None):
        optimizer = optimizer_state["optimizer"]
        if self.schedule is not None:
            multiplier = float(self.schedule(global_step, workload.step_hint, hyperparameters))
            for group, base_lr in zip(optimizer.param_groups, optimizer_state["base_lrs"]):
                group["lr"] = base_lr * multiplier
        step_closure = TrainingClosure(workload, current_param_container, model_state, batch, rng, hyperparameters)
        optimizer.step(step_closure)
        if step_closure.calls == 0:
            raise RuntimeError(f"{type(optimizer).__name__}.step(closure) never called the closure")
        loss = step_closure.last_loss
        if loss is not None and global_step % LOSS_EVERY == 0:
            if not math.isfinite(loss):
                raise DivergedError(f"training loss is {float(loss)} at step {global_step}")
            if workload.metrics_logger is not None:
                workload.metrics_logger.append_scalar_metrics({"train_loss": loss}, global_step)
        return optimizer_state, current_param_container, step_closure.model_state
