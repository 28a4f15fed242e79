"""EGN, exact Gauss-Newton (Korbit, Adeoye, Bemporad, Zanon: Exact Gauss-Newton Optimization for Training
Deep Neural Networks, 2024), written against the AlgoPerf API because it needs the model outputs.

The damped Gauss-Newton direction over the batch, G = J^T Q J / b with J the Jacobian of the b x c
outputs and Q the loss's Hessian in the outputs, is solved exactly in the b*c-dimensional output
space instead of the n-dimensional parameter space (Duncan-Guttman / Woodbury identity). With
Q_i = L_i L_i^T and U = J^T L / sqrt(b) (n x bc):

    d = (U U^T + lambda I)^{-1} g = (g - U (lambda I + U^T U)^{-1} U^T g) / lambda
    theta <- theta - lr d

Q's factor per loss type: sigmoid CE p(1-p) -> sqrt(p(1-p)); softmax CE diag(p) - p p^T ->
diag(sqrt(p)) - p sqrt(p)^T; mean squared error -> I. The paper's Armijo line search, adaptive
(Levenberg-Marquardt) lambda and momentum are not included: lr follows timetrial's schedule and
lambda is fixed. Forming J needs b*c backward passes' worth of memory (n x bc), so only the
logistic-regression suite is supported.
"""

import math

import torch

from algoperf import spec
from harness.core.spec import UnsupportedWorkloadError  # timetrial's, not in algoperf.spec
from optimlib import schedules
from optimlib.hessian import require_small_convex_workload


def output_hessian_factor(logits: torch.Tensor, loss_type) -> torch.Tensor:
    """L with L L^T = d^2 loss / d logits^2 per example: shape (b, c, c) (c = 1 for a squeezed binary output)."""
    if loss_type is spec.LossType.SIGMOID_CROSS_ENTROPY:
        p = torch.sigmoid(logits.reshape(logits.shape[0], -1))
        return torch.diag_embed(torch.sqrt(p * (1 - p)))
    if loss_type is spec.LossType.SOFTMAX_CROSS_ENTROPY:
        p = torch.softmax(logits, dim=-1)
        return torch.diag_embed(p.sqrt()) - p.unsqueeze(-1) * p.sqrt().unsqueeze(-2)
    if loss_type is spec.LossType.MEAN_SQUARED_ERROR:
        c = logits.reshape(logits.shape[0], -1).shape[1]
        return torch.eye(c, dtype=logits.dtype).expand(logits.shape[0], c, c)
    raise ValueError(f"EGN has no output Hessian for loss type {loss_type}; valid: sigmoid/softmax CE, MSE")


def gauss_newton_direction(grad: torch.Tensor, jacobian: torch.Tensor, factor: torch.Tensor,
                           damping: float) -> torch.Tensor:
    """(J^T Q J / b + damping I)^{-1} grad through the b*c x b*c system. jacobian: (b, c, n); factor: (b, c, c)."""
    b, c, n = jacobian.shape
    U = torch.einsum("bkn,bkj->nbj", jacobian, factor).reshape(n, b * c) / math.sqrt(b)
    inner = damping * torch.eye(b * c, dtype=U.dtype) + U.T @ U
    return (grad - U @ torch.linalg.solve(inner, U.T @ grad)) / damping


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    require_small_convex_workload(workload, "egn", UnsupportedWorkloadError)
    if hyperparameters.damping <= 0:
        raise ValueError(f"damping={hyperparameters.damping}; it must be > 0")
    return {"step_hint": workload.step_hint}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    model = current_param_container
    params = list(model.parameters())
    lr = hyperparameters.learning_rate * schedules.warmup_cosine(
        global_step, optimizer_state["step_hint"], hyperparameters.warmup_factor)
    logits, new_model_state = workload.model_fn(
        params=model, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=True)
    out = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    loss = out["summed"] / out["n_valid_examples"]
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)])
    outputs = logits.reshape(logits.shape[0], -1)
    b, c = outputs.shape
    basis = torch.eye(b * c, dtype=logits.dtype).reshape(b * c, *logits.shape)
    rows = torch.autograd.grad(logits, params, grad_outputs=basis, is_grads_batched=True)
    jacobian = torch.cat([r.reshape(b * c, -1) for r in rows], dim=1).reshape(b, c, -1)
    factor = output_hessian_factor(logits.detach(), loss_type)
    direction = gauss_newton_direction(grad.double(), jacobian.double(), factor.double(), hyperparameters.damping)
    with torch.no_grad():
        offset = 0
        for p in params:
            p.sub_(lr * direction[offset:offset + p.numel()].view_as(p).to(p.dtype))
            offset += p.numel()
    # a tensor, read at evaluation (no device sync here); the runner marks a non-finite loss diverged
    workload.metrics_logger.append_scalar_metrics({"train_loss": loss.detach()}, global_step)
    return optimizer_state, model, new_model_state
