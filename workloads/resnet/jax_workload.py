"""The CIFAR-style ResNet in JAX (`framework=jax`, installed by `pip install -e '.[jax]'`; docs/jax.md).

Same data, batch stream (the PyTorch stream's exact batches, converted), loss, evaluation and
metrics, target and budget as the PyTorch classes (inherited), ReLU (resnet) and SiLU (resnet_silu)
alike. No module library (flax, which the project does not install): the model is a plain parameter
dict keyed by the PyTorch model's parameter names in PyTorch's layouts ("conv1.weight" OIHW,
"blocks.0.bn1.weight", "fc.weight" (out, in), ...), initialised by converting the PyTorch model that
the same seed builds, so both frameworks start from identical weights.

BatchNorm as AlgoPerf's JAX workloads keep it: the running statistics live in `model_state`, a dict
keyed by the PyTorch buffer names ("bn1.running_mean", "blocks.0.bn1.running_var", ...), converted
from the same PyTorch model. With nn.BatchNorm2d's conventions: TRAIN mode normalises by the batch's
mean and biased variance, and with `update_batch_norm` returns new running statistics moved
`momentum` of the way to the batch's mean and unbiased variance; EVAL mode normalises by the running
statistics; `model_state` comes back unchanged unless updated. `model_fn`/`loss_fn` are pure, for
`jax.jit` and `jax.grad`; the ResNet has no dropout.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from harness.core.spec import ForwardPassMode, Workload
from workloads.images.jax_workload import JaxImageClassification, conv2d  # says how to install jax if absent
from workloads.jax_common import jax_class, linear
from workloads.resnet.model import ResNetConfig

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

BATCH_NORM_MOMENTUM, BATCH_NORM_EPS = 0.1, 1e-5  # nn.BatchNorm2d's defaults, which the PyTorch model keeps
RUNNING_STATISTICS = ("running_mean", "running_var")
ACTIVATIONS = {"relu": jax.nn.relu, "silu": jax.nn.silu,
               "gelu": functools.partial(jax.nn.gelu, approximate=False)}  # F.gelu: the erf form


class BatchNorms:
    """The BatchNorm2d layers of one forward pass: `norm(params, prefix, x)` normalises NCHW `x` over
    (N, H, W) per channel; `state` is the `model_state` the forward pass returns."""

    def __init__(self, model_state: dict[str, jax.Array], mode: ForwardPassMode, update_batch_norm: bool):
        if model_state is None:
            raise ValueError("resnet model_fn: model_state is None; pass the one init_model_fn returned "
                             "(the BatchNorm running statistics)")
        self.training = mode == ForwardPassMode.TRAIN
        self.update = self.training and update_batch_norm
        self.running = model_state
        self.state = dict(model_state) if self.update else model_state

    def running_statistic(self, key: str) -> jax.Array:
        if key not in self.running:
            raise KeyError(f"model_state has no {key!r}; pass the model_state init_model_fn returned")
        return self.running[key]

    def __call__(self, params: dict[str, jax.Array], prefix: str, x: jax.Array) -> jax.Array:
        running_mean, running_var = (self.running_statistic(f"{prefix}.{name}") for name in RUNNING_STATISTICS)
        if self.training:
            mean = x.mean((0, 2, 3))
            variance = ((x - mean[:, None, None]) ** 2).mean((0, 2, 3))  # biased: what torch normalises by
        else:
            mean, variance = running_mean, running_var
        if self.update:
            n = x.size // x.shape[1]  # values per channel
            self.state[f"{prefix}.running_mean"] = (1 - BATCH_NORM_MOMENTUM) * running_mean + BATCH_NORM_MOMENTUM * mean
            # torch averages the unbiased variance, though it normalises by the biased one
            self.state[f"{prefix}.running_var"] = ((1 - BATCH_NORM_MOMENTUM) * running_var
                                                   + BATCH_NORM_MOMENTUM * variance * (n / (n - 1)))
        scale = params[f"{prefix}.weight"] * jax.lax.rsqrt(variance + BATCH_NORM_EPS)
        return (x - mean[:, None, None]) * scale[:, None, None] + params[f"{prefix}.bias"][:, None, None]


def block_strides(config: ResNetConfig) -> list[int]:
    """Each basic block's stride, as ResNet.__init__ builds them: the first block of every stage after
    the first halves the resolution."""
    return [2 if stage > 0 and i == 0 else 1 for stage, n_blocks in enumerate(config.blocks_per_stage)
            for i in range(n_blocks)]


def basic_block(params, prefix: str, x: jax.Array, stride: int, padding: tuple[int, int], act,
                norm: BatchNorms) -> jax.Array:
    """`BasicBlock.forward`: two convolutions + BatchNorm, a projection shortcut where the shape changes."""
    out = act(norm(params, f"{prefix}.bn1", conv2d(params, f"{prefix}.conv1", x, (stride, stride), padding)))
    out = norm(params, f"{prefix}.bn2", conv2d(params, f"{prefix}.conv2", out, padding=padding))
    if f"{prefix}.conv_shortcut.weight" in params:
        x = norm(params, f"{prefix}.bn_shortcut", conv2d(params, f"{prefix}.conv_shortcut", x, (stride, stride)))
    return act(out + x)


class JaxResNet(JaxImageClassification):
    """Mixin over a PyTorch ResNet workload class: the JAX model, with BatchNorm state in `model_state`."""

    def model_state_from_torch(self, model: torch.nn.Module, model_state: Any) -> dict[str, jax.Array]:
        # torch's third buffer, num_batches_tracked, only serves momentum=None (a cumulative average)
        return {name: jnp.asarray(buffer.detach().cpu().numpy()) for name, buffer in model.named_buffers()
                if name.rsplit(".", 1)[-1] in RUNNING_STATISTICS}

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        config, act = self.size.options["model"], ACTIVATIONS[self.activation]
        padding = (config.kernel[0] // 2, config.kernel[1] // 2)  # "same" size for odd kernels, as in PyTorch
        norm = BatchNorms(model_state, mode, update_batch_norm)
        x = act(norm(params, "bn1", conv2d(params, "conv1", augmented_and_preprocessed_input_batch["inputs"],
                                           padding=padding)))
        for i, stride in enumerate(block_strides(config)):
            x = basic_block(params, f"blocks.{i}", x, stride, padding, act, norm)
        return linear(params, "fc", x.mean((2, 3))), norm.state  # global average pooling


def jax_implementation(cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch ResNet workload class) with the JAX model, loss and hooks."""
    return jax_class(JaxResNet, cls)
