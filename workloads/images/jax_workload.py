"""What the JAX image-classification workloads share (resnet and vit, `framework=jax`; docs/jax.md):
the convolution, softmax cross-entropy and the PyTorch evaluation's splits and metrics.

Images arrive as the PyTorch stream makes them, NCHW float32 (MNIST-1D: N x 1 x 1 x 40; CIFAR-10:
N x 3 x 32 x 32, cropped and flipped by the PyTorch stream), and convolution weights keep PyTorch's
OIHW layout, so `lax.conv_general_dilated` reads both as they are and the weight conversion stays an
identity.
"""

from __future__ import annotations

from typing import Any

from workloads.images.workload import EVAL_BATCH_SIZE
from workloads.jax_common import TorchInitialisedJaxWorkload, softmax_cross_entropy  # says how to install jax if absent

import jax  # noqa: E402

CONV_LAYOUT = ("NCHW", "OIHW", "NCHW")  # torch's input, weight and output layouts


def conv2d(params: dict[str, jax.Array], prefix: str, x: jax.Array, stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> jax.Array:
    """nn.Conv2d (dilation 1, groups 1) with its stride and symmetric zero padding per spatial axis;
    the bias is optional (`bias=False` layers have none)."""
    out = jax.lax.conv_general_dilated(x, params[f"{prefix}.weight"], stride, [(p, p) for p in padding],
                                       dimension_numbers=CONV_LAYOUT)
    return out + params[f"{prefix}.bias"][:, None, None] if f"{prefix}.bias" in params else out


class JaxImageClassification(TorchInitialisedJaxWorkload):
    """Mixin over a PyTorch image workload class: the loss and evaluation; families add `model_fn`."""

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)

    def correct_predictions(self, logits, targets):
        return logits.argmax(-1) == targets

    def eval_model(self, model: dict[str, jax.Array], model_state: Any) -> dict[str, float]:
        # The PyTorch eval's splits (the fixed train subset, the validation set) in its batches.
        metrics, size = {}, EVAL_BATCH_SIZE
        for split, images, labels in (("train", self.train_eval_images, self.train_eval_labels),
                                      ("validation", self.validation_images, self.validation_labels)):
            batches = ({"inputs": images[start:start + size], "targets": labels[start:start + size]}
                       for start in range(0, len(labels), size))
            loss, accuracy = self.evaluate(model, model_state, batches)
            metrics.update({f"{split}_loss": loss, f"{split}_accuracy": accuracy, f"{split}_error": 1.0 - accuracy})
        return metrics
