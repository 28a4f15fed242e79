"""What every JAX workload class shares (`framework=jax`; docs/jax.md).

A JAX workload is a mixin over its PyTorch class: data, batch stream, targets, budgets and
`trivial_scores` are inherited, the mixin supplies a pure `model_fn`/`loss_fn` over a plain parameter
dict and the framework hooks below. No module library (flax): the parameter dict is keyed by the
PyTorch model's `named_parameters()` names and keeps PyTorch's layouts, so weights convert one to
one (`params_from_torch`), `param_shapes`/`model_params_types` have the same tree structure as the
parameters, and `is_output_params` means the same in both frameworks. The layers more than one
family uses (linear, layer norm, attention, dropout, cross-entropy) are pure functions here.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as err:
    raise ImportError("framework=jax needs the jax extra: .venv/bin/pip install -e '.[jax]'") from err

import torch

from harness.core.spec import ForwardPassMode, Workload, module_parameter_types


def to_jax(batch: dict[str, torch.Tensor]) -> dict[str, jax.Array]:
    """A batch of torch tensors as jax arrays (int64 becomes int32 unless jax_enable_x64)."""
    return {key: jnp.asarray(value.detach().cpu().numpy()) for key, value in batch.items()}


def torch_to_jax_params(model: torch.nn.Module) -> dict[str, jax.Array]:
    """The model's parameters as {named_parameters() name: jax array}, same layout (a Linear weight stays
    (out, in)). A tied parameter appears once, under its first name, as `named_parameters` lists it."""
    return {name: jnp.asarray(p.detach().cpu().numpy()) for name, p in model.named_parameters()}


def loss_outputs(per_example: jax.Array, mask_batch: jax.Array | None) -> dict[str, jax.Array]:
    """AlgoPerf's loss dict from per-example (or per-token) losses; masked entries count for nothing."""
    if mask_batch is not None:
        per_example = per_example * mask_batch
        n_valid = mask_batch.sum()
    else:
        n_valid = jnp.asarray(float(per_example.size))
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


def is_static_zero(value: Any) -> bool:
    """True when `value` is known while tracing to be none or 0, so the work it scales can be skipped. A
    traced value is never: AlgoPerf's JAX baselines pass `dropout_rate` and `label_smoothing` to their jitted
    step as arguments, so a model_fn or loss_fn sees them as tracers and must not branch on them."""
    return not isinstance(value, jax.core.Tracer) and float(value or 0.0) == 0.0


def dropout(x: jax.Array, rate: Any, rng: Any, broadcast_dims: Iterable[int] = ()) -> jax.Array:
    """`F.dropout(x, rate, training=True)`: zero each element with probability `rate`, scale the rest
    by 1 / (1 - rate); rate 1 gives zeros. Dimensions in `broadcast_dims` share one mask (the option of
    AlgoPerf's `jax_utils.Dropout`). `rate` may be traced (a jit argument): the mask is then drawn under
    `lax.cond`, so a rate that is 0 at run time costs no mask, as a static 0 costs none."""

    def masked(x: jax.Array) -> jax.Array:
        keep_prob = 1.0 - rate
        shared = {dim % x.ndim for dim in broadcast_dims}
        mask_shape = tuple(1 if dim in shared else size for dim, size in enumerate(x.shape))
        # Drawn flat and reshaped: the same mask (threefry counts elements in row-major order), but
        # XLA:CPU compiles threefry over a 4-D shape ~10x slower than over a 1-D one (4 s vs 0.35 s).
        flat = jax.random.bernoulli(rng, keep_prob, (math.prod(mask_shape),)).reshape(mask_shape)
        keep = jnp.broadcast_to(flat, x.shape)
        # the inner where: at rate 1 no division by zero, whose gradient would be NaN
        return jnp.where(keep, x / jnp.where(keep_prob > 0, keep_prob, 1.0), 0.0).astype(x.dtype)

    if isinstance(rate, jax.core.Tracer):
        return jax.lax.cond(rate > 0, masked, lambda x: x, x)
    return masked(x)


# ---- layers the JAX models share, over parameter dicts in PyTorch's names and layouts -----------
LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default


def linear(params: dict[str, jax.Array], prefix: str, x: jax.Array) -> jax.Array:
    """nn.Linear: the weight is (out, in); the bias is optional (`bias=False` layers have none)."""
    out = x @ params[f"{prefix}.weight"].T
    return out + params[f"{prefix}.bias"] if f"{prefix}.bias" in params else out


def layer_norm(params: dict[str, jax.Array], prefix: str, x: jax.Array) -> jax.Array:
    """nn.LayerNorm over the last axis (biased variance, as torch)."""
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    out = (x - mean) * jax.lax.rsqrt(variance + LAYER_NORM_EPS) * params[f"{prefix}.weight"]
    return out + params[f"{prefix}.bias"] if f"{prefix}.bias" in params else out


def attention(qkv: jax.Array, n_head: int, causal: bool, drop: Dropout) -> jax.Array:
    """Multi-head `F.scaled_dot_product_attention` of the fused (B, T, 3C) query/key/value projections
    (split into q, k, v along the last axis, as the PyTorch models do), written out: the heads'
    outputs (B, T, C) before the output projection, with dropout on the attention probabilities as
    its dropout_p."""
    B, T, C = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
    q, k, v = (t.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
               for t in jnp.split(qkv, 3, axis=-1))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(C // n_head)
    if causal:
        scores = jnp.where(np.tril(np.ones((T, T), bool)), scores, -jnp.inf)
    y = drop(jax.nn.softmax(scores, axis=-1)) @ v
    return y.transpose(0, 2, 1, 3).reshape(B, T, C)


def softmax_cross_entropy(label_batch: jax.Array, logits_batch: jax.Array, mask_batch: jax.Array | None = None,
                          label_smoothing: float = 0.0) -> dict[str, jax.Array]:
    """`F.cross_entropy(label_smoothing=s, reduction="none")` in float32 over the last axis:
    (1 - s) * NLL + s * mean over classes of -log p; AlgoPerf's loss dict."""
    log_probs = jax.nn.log_softmax(logits_batch.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(log_probs, label_batch[..., None], axis=-1)[..., 0]
    if is_static_zero(label_smoothing):  # a traced smoothing (a jit argument) must not be branched on
        return loss_outputs(nll, mask_batch)
    per_example = (1 - label_smoothing) * nll - label_smoothing * log_probs.mean(-1)
    return loss_outputs(per_example, mask_batch)


class Dropout:
    """The dropout sites of one forward pass: `site(x)` draws each site's mask from its own key,
    `fold_in(rng, site number)`. Inactive (identity) in EVAL mode or at a rate that is statically 0, where
    `rng` is ignored; a traced rate needs `rng` and masks wherever it is > 0 at run time (`dropout`)."""

    def __init__(self, rate: Any, mode: ForwardPassMode, rng: Any):
        self.rate = rate if mode == ForwardPassMode.TRAIN else None
        self.active = not is_static_zero(self.rate)
        if self.active and rng is None:
            raise ValueError("model_fn: dropout_rate > 0 in TRAIN mode needs rng (a jax.random key)")
        self.rng, self.sites = rng, 0

    def __call__(self, x: jax.Array) -> jax.Array:
        if not self.active:
            return x
        self.sites += 1
        return dropout(x, self.rate, jax.random.fold_in(self.rng, self.sites))


class JaxWorkload:
    """Mixin over a PyTorch workload class: the JAX batch stream, parameter conversion and hooks."""

    framework = "jax"

    def params_from_torch(self, model: torch.nn.Module) -> dict[str, jax.Array]:
        """The JAX parameters of `model` (the PyTorch initialisation of the same seed); records
        `_param_shapes` and `_param_types` (from the torch modules, so both frameworks report the same)."""
        params = torch_to_jax_params(model)
        self._param_shapes = {name: tuple(value.shape) for name, value in params.items()}
        self._param_types = module_parameter_types(model)
        return params

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[dict[str, jax.Array]]:
        # The PyTorch stream's exact batches, so the two implementations see the same data.
        for batch in super().train_batches(batch_size, seed, start_step):
            yield to_jax(batch)

    def evaluate(self, model: dict[str, jax.Array], model_state: Any,
                 batches: Iterable[dict[str, torch.Tensor]]) -> tuple[float, float]:
        """(mean loss, accuracy) over the evaluation batches (torch tensors, as the PyTorch eval reads
        them), one jitted forward per batch shape; a prediction is correct as `correct_predictions` says."""
        summed = correct = count = 0.0
        for batch in batches:
            sums = self._eval_sums(model, model_state, to_jax(batch))
            summed, correct, count = (total + float(s) for total, s in zip((summed, correct, count), sums))
        return summed / count, correct / count

    @functools.cached_property
    def _eval_sums(self) -> Callable[..., tuple[jax.Array, jax.Array, jax.Array]]:
        def sums(params, model_state, batch):
            logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            out = self.loss_fn(batch["targets"], logits)
            return out["summed"], self.correct_predictions(logits, batch["targets"]).sum(), out["n_valid_examples"]

        return jax.jit(sums)

    def correct_predictions(self, logits: jax.Array, targets: jax.Array) -> jax.Array:
        raise NotImplementedError

    # ---- framework hooks -------------------------------------------------------------------------
    def synchronize(self, outputs: Any = None) -> None:
        # JAX dispatches asynchronously, on CPU too: the step is done when its outputs are ready.
        if outputs is not None:
            jax.block_until_ready(outputs)

    def params_state(self, model: dict[str, jax.Array]) -> dict[str, np.ndarray]:
        return jax.device_get(model)

    def load_params_state(self, model: dict[str, jax.Array], saved: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return jax.tree.map(jnp.asarray, saved)


class TorchInitialisedJaxWorkload(JaxWorkload):
    """A JAX mixin whose parameters (and model state) start as the PyTorch model of the same seed, converted."""

    def init_model_fn(self, rng: int) -> tuple[dict[str, jax.Array], Any]:
        model, model_state = super().init_model_fn(rng)  # the PyTorch model of this seed
        return self.params_from_torch(model), self.model_state_from_torch(model, model_state)

    def model_state_from_torch(self, model: torch.nn.Module, model_state: Any) -> Any:
        """The JAX `model_state` of the PyTorch model: its own (None) unless the model keeps state in
        buffers (BatchNorm's running statistics), which JAX must carry in `model_state` instead."""
        return model_state


@functools.cache
def jax_class(mixin: type, cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch workload class) with a JAX mixin's model, loss and hooks in front."""
    return type(f"{cls.__name__}Jax", (mixin, cls), {"__doc__": f"{cls.__doc__ or cls.description} (JAX)"})
