"""AdAdaGrad (Lau, Liu & Kolar, AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
Methods, 2024): AdaGrad or AdaGrad-Norm whose batch grows when a test on the per-example gradients
says the mini-batch gradient is too noisy.

With per-example gradients g_i of the b examples of the batch and g their mean,

    norm test:           b_next = ceil( Var_i(g_i) / (eta^2 ||g||^2) )
    inner-product test:  b_next = ceil( Var_i(<g_i, g>) / (eta^2 ||g||^4) )
    with Var_i(x_i) = sum_i ||x_i - mean(x)||^2 / (b - 1)

and the batch size becomes min(max(b, b_next), max_batch_multiplier * default batch): it never
shrinks. The step is AdaGrad (v += g^2 per coordinate) or AdaGrad-Norm (v += ||g||^2, one scalar):
x <- x - lr * g / (sqrt(v) + eps).

The batch size changes through AlgoPerf's own `data_selection` hook: examples are taken from
the workload's stream of fixed-size batches through a buffer kept in the optimizer state, so a
batch of any size is served in stream order and no example is skipped. Per-example gradients
are rows of the Jacobian of the workload's per-example losses, from batched backward passes
(torch.autograd.grad(..., is_grads_batched=True)) of at most JACOBIAN_BUDGET entries each.
"""

import math

import torch

from algoperf import spec

TESTS = ("norm", "inner_product")
OPTIMIZERS = ("adagrad", "adagrad_norm")
JACOBIAN_BUDGET = 2**22  # per-example gradient entries materialised at once (16 MiB in float32)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    if hyperparameters.test not in TESTS:
        raise ValueError(f"test={hyperparameters.test!r}; valid: {list(TESTS)}")
    if hyperparameters.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={hyperparameters.optimizer!r}; valid: {list(OPTIMIZERS)}")
    params = [p for p in model_params.parameters() if p.requires_grad]
    accumulators = ([torch.zeros_like(p) for p in params] if hyperparameters.optimizer == "adagrad"
                    else [torch.zeros((), dtype=params[0].dtype, device=params[0].device)])
    return {"batch_size": int(hyperparameters.initial_batch_size), "max_batch_size": None,
            "buffer": None, "accumulators": accumulators}


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    """The next `optimizer_state["batch_size"]` examples of the stream (buffered across calls)."""
    size = optimizer_state["batch_size"]
    buffer = optimizer_state["buffer"]
    while buffer is None or len(buffer["inputs"]) < size:
        batch = next(input_queue)
        if optimizer_state["max_batch_size"] is None:
            optimizer_state["max_batch_size"] = int(hyperparameters.max_batch_multiplier * len(batch["inputs"]))
        buffer = batch if buffer is None else {k: torch.cat([buffer[k], batch[k]]) for k in buffer}
    optimizer_state["buffer"] = {k: v[size:] for k, v in buffer.items()}
    return {k: v[:size] for k, v in buffer.items()}


def batch_statistics(workload, model, model_state, batch, rng, hyperparameters):
    """Mean loss and gradient g, and what the tests need from the per-example gradients g_i:
    sum_i ||g_i||^2 and the vector of <g_i, g>. The g_i are rows of the Jacobian of the per-example
    losses, computed a block of rows at a time by a batched backward pass, so memory stays at
    JACOBIAN_BUDGET entries whatever the batch size (token-level losses count as examples)."""
    params = [p for p in model.parameters() if p.requires_grad]
    logits, new_model_state = workload.model_fn(
        params=model, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=True,
        dropout_rate=hyperparameters.get("dropout_rate"))
    out = workload.loss_fn(batch["targets"], logits, batch.get("weights"), hyperparameters.get("label_smoothing", 0.0))
    loss = out["summed"] / out["n_valid_examples"]
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)])
    per_example = out["per_example"].reshape(-1)
    identity = torch.eye(len(per_example), dtype=per_example.dtype, device=per_example.device)
    squared_norms, inner_products = 0.0, []
    rows_per_pass = max(1, JACOBIAN_BUDGET // len(grad))
    for rows in identity.split(rows_per_pass):
        jacobian = torch.autograd.grad(per_example, params, grad_outputs=rows, is_grads_batched=True,
                                       retain_graph=True)
        jacobian = torch.cat([j.reshape(len(rows), -1) for j in jacobian], dim=1)
        squared_norms += float(jacobian.square().sum())
        inner_products.append(jacobian @ grad)
    return loss.detach(), grad, squared_norms, torch.cat(inner_products), new_model_state


def next_batch_size(grad: torch.Tensor, squared_norms: float, inner_products: torch.Tensor, test: str,
                    eta: float) -> float:
    """The batch size the test asks for (may be below the current one: the caller keeps the max).
    Uses sum_i ||g_i - g||^2 = sum_i ||g_i||^2 - b ||g||^2 and sum_i <g_i, g> = b ||g||^2."""
    b = len(inner_products)
    grad_norm_sq = float(grad.square().sum())
    if b < 2 or grad_norm_sq == 0.0:
        return b
    if test == "norm":
        variance = (squared_norms - b * grad_norm_sq) / (b - 1)
        return variance / (eta**2 * grad_norm_sq)
    variance = float((inner_products - grad_norm_sq).square().sum()) / (b - 1)
    return variance / (eta**2 * grad_norm_sq**2)


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    model = current_param_container
    model.train()
    loss, grad, squared_norms, inner_products, new_model_state = batch_statistics(
        workload, model, model_state, batch, rng, hyperparameters)
    b = optimizer_state["batch_size"]
    wanted = math.ceil(next_batch_size(grad, squared_norms, inner_products, hyperparameters.test, hyperparameters.eta))
    cap = optimizer_state["max_batch_size"] or b
    optimizer_state["batch_size"] = min(max(b, wanted), max(cap, b))
    accumulators = optimizer_state["accumulators"]
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        if hyperparameters.optimizer == "adagrad_norm":
            accumulators[0].add_(grad.square().sum())
        offset = 0
        for i, p in enumerate(params):
            g = grad[offset:offset + p.numel()].reshape(p.shape)
            offset += p.numel()
            if hyperparameters.optimizer == "adagrad":
                accumulators[i].add_(g.square())
            v = accumulators[i] if hyperparameters.optimizer == "adagrad" else accumulators[0]
            p.sub_(hyperparameters.learning_rate * g / (v.sqrt() + hyperparameters.epsilon))
    if workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics({"train_loss": loss.detach(), "batch_size": b}, global_step)
    return optimizer_state, model, new_model_state
