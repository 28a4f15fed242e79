"""Model FLOPs of a training step, counted analytically from the model's shapes (as nanoGPT's
`estimate_mfu` counts them), for the model FLOP/s utilisation (MFU) that scripts/bench_mfu.py reports.

Only matrix products count: Linear layers, convolutions, attention's two batched products and any other
product a workload names. A multiply-add is 2 FLOPs, and a training step costs 3 forward passes (the
backward pass computes the input and the weight gradient of every product, each as large as the
forward product), so a step is 6 FLOPs per multiply-add per example. Normalisations, activations,
softmax, embedding look-ups and the optimizer are left out, as in nanoGPT and the PaLM paper's MFU.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

FLOPS_PER_MULTIPLY_ADD = 2
#: forward + backward (input gradients and weight gradients) of each product
FORWARD_PASSES_PER_TRAINING_STEP = 3
TRAIN_FLOPS_PER_MULTIPLY_ADD = FLOPS_PER_MULTIPLY_ADD * FORWARD_PASSES_PER_TRAINING_STEP


def layer_multiply_adds(model: torch.nn.Module, forward: Callable[[], Any]) -> int:
    """Multiply-adds of the model's Linear and convolution layers in the forward pass `forward()` runs:
    each layer's weight shape times the positions it is applied at, which a forward hook reads from its
    output's shape (a Linear's rows, a convolution's output pixels)."""
    total = 0

    def count(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features
        else:  # a convolution: every output value sums kernel x (input channels per group) products
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))]
    handles = [layer.register_forward_hook(count) for layer in layers]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return total


def attention_multiply_adds(layers: int, width: int, queries: int, keys: int) -> int:
    """Multiply-adds of softmax attention's two products (scores Q K^T and their weighted sum of V) over
    all heads of `layers` layers: 2 x queries x keys x width each (a causal mask is not discounted, as
    nanoGPT does not discount it)."""
    return 2 * layers * queries * keys * width
