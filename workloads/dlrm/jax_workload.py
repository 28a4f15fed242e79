"""DLRM-small in JAX (`framework=jax`, installed by `pip install -e '.[jax]'`; docs/jax.md).

Same data, batch stream (the PyTorch stream's exact batches, converted), loss, evaluation rows and
metrics, target and budget as the PyTorch classes (inherited), so a JAX and a PyTorch submission race
to the same line. No module library (flax, which the project does not install): the model is a plain
parameter dict keyed by the PyTorch model's parameter names in PyTorch's layouts ("embedding.weight"
(vocab, d), "bot_mlp.0.weight" (out, in), ...), initialised by converting the PyTorch model that the
same seed builds, so both frameworks start from identical weights. `model_fn`/`loss_fn` are pure, for
`jax.jit` and `jax.grad`; dropout (on the input of the last top layer, as in PyTorch) uses `rng` as a
`jax.random` key when `dropout_rate` > 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.core.spec import Workload
from workloads.dlrm import data
# first: says how to install jax if absent
from workloads.jax_common import Dropout, TorchInitialisedJaxWorkload, jax_class, linear, loss_outputs

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def layer_prefixes(params: dict[str, jax.Array], mlp: str) -> list[str]:
    """The Linear layers of an nn.Sequential MLP in order ("top_mlp.0", "top_mlp.2", ...: ReLUs between)."""
    return sorted({name.rsplit(".", 1)[0] for name in params if name.startswith(f"{mlp}.")},
                  key=lambda prefix: int(prefix.split(".")[1]))


class JaxDLRMSmall(TorchInitialisedJaxWorkload):
    """Mixin over a PyTorch DLRM workload class: the JAX model and loss."""

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        inputs = augmented_and_preprocessed_input_batch["inputs"]
        dense, sparse = inputs[:, :data.N_DENSE], inputs[:, data.N_DENSE:].astype(jnp.int32)
        bottom = dense
        for prefix in layer_prefixes(params, "bot_mlp"):  # ReLU after every bottom layer
            bottom = jax.nn.relu(linear(params, prefix, bottom))
        vectors = jnp.concatenate([bottom[:, None, :], params["embedding.weight"][sparse]], axis=1)
        gram = jnp.einsum("bnd,bmd->bnm", vectors, vectors)
        rows, cols = np.triu_indices(vectors.shape[1], k=1)  # torch.triu_indices' order (row-major)
        hidden = jnp.concatenate([bottom, gram[:, rows, cols]], axis=1)
        *hidden_layers, last = layer_prefixes(params, "top_mlp")
        for prefix in hidden_layers:
            hidden = jax.nn.relu(linear(params, prefix, hidden))
        hidden = Dropout(dropout_rate, mode, rng)(hidden)
        return linear(params, last, hidden)[:, 0], model_state

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        targets = label_batch * (1 - label_smoothing) + 0.5 * label_smoothing
        # F.binary_cross_entropy_with_logits' stable form
        per_example = jnp.maximum(logits_batch, 0) - logits_batch * targets + jnp.log1p(jnp.exp(-jnp.abs(logits_batch)))
        return loss_outputs(per_example, mask_batch)

    def correct_predictions(self, logits, targets):
        return (logits > 0).astype(jnp.float32) == targets

    def eval_model(self, model: dict[str, jax.Array], model_state: Any) -> dict[str, float]:
        # The PyTorch eval's rows and batches: the fixed train subset and the validation rows.
        metrics, size = {}, self.options["eval_batch_size"]
        for prefix, split in (("train", self.train_eval), ("validation", self.splits["val"])):
            batches = ({key: value[start:start + size] for key, value in split.items()}
                       for start in range(0, len(split["targets"]), size))
            metrics[f"{prefix}_loss"], metrics[f"{prefix}_accuracy"] = self.evaluate(model, model_state, batches)
        return metrics


def jax_implementation(cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch DLRM workload class) with the JAX model, loss and hooks."""
    return jax_class(JaxDLRMSmall, cls)
