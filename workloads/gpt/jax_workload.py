"""The GPT decoder in JAX (`framework=jax`, installed by `pip install -e '.[jax]'`; docs/jax.md).

Same data, batch stream (the PyTorch stream's exact windows, converted), loss, evaluation windows and
metrics, target and budget as the PyTorch classes (inherited), pre-LN and post-LN (gpt2_post_ln) alike.
No module library (flax, which the project does not install): the model is a plain parameter dict
keyed by the PyTorch model's parameter names in PyTorch's layouts ("transformer.wte.weight" (vocab,
C), "transformer.h.0.attn.c_attn.weight" (3C, C), ...; the output layer is tied to
`transformer.wte.weight`, which appears once, as in `named_parameters`), initialised by converting the
PyTorch model that the same seed builds, so both frameworks start from identical weights.
`model_fn`/`loss_fn` are pure, for `jax.jit` and `jax.grad`. Dropout sits where nanoGPT puts it
(embeddings, attention probabilities, both residual branches) and uses `rng` as a `jax.random` key
when `dropout_rate` > 0.
"""

from __future__ import annotations

from typing import Any

from harness.core.spec import Workload
# first: it says how to install jax if absent
from workloads.jax_common import (Dropout, TorchInitialisedJaxWorkload, attention, jax_class, layer_norm, linear,
                                  softmax_cross_entropy)

import jax  # noqa: E402


def causal_self_attention(params, prefix: str, x: jax.Array, n_head: int, drop: Dropout) -> jax.Array:
    """`CausalSelfAttention.forward`: scaled_dot_product_attention(is_causal=True) with dropout_p."""
    heads = attention(linear(params, f"{prefix}.c_attn", x), n_head, True, drop)
    return drop(linear(params, f"{prefix}.c_proj", heads))


def mlp(params, prefix: str, x: jax.Array, drop: Dropout) -> jax.Array:
    hidden = jax.nn.gelu(linear(params, f"{prefix}.c_fc", x), approximate=False)  # F.gelu: the erf form
    return drop(linear(params, f"{prefix}.c_proj", hidden))


class JaxGPT(TorchInitialisedJaxWorkload):
    """Mixin over a PyTorch GPT workload class: the JAX model and loss."""

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        idx = augmented_and_preprocessed_input_batch["inputs"]
        T, n_head = idx.shape[1], self.options["n_head"]
        assert T <= self.options["block_size"], f"sequence length {T} > block_size {self.options['block_size']}"
        drop = Dropout(dropout_rate, mode, rng)
        wte = params["transformer.wte.weight"]
        x = drop(wte[idx] + params["transformer.wpe.weight"][:T])
        for layer in range(self.options["n_layer"]):
            block = f"transformer.h.{layer}"
            if self.pre_ln:
                x = x + causal_self_attention(params, f"{block}.attn", layer_norm(params, f"{block}.ln_1", x),
                                              n_head, drop)
                x = x + mlp(params, f"{block}.mlp", layer_norm(params, f"{block}.ln_2", x), drop)
            else:
                x = layer_norm(params, f"{block}.ln_1", x + causal_self_attention(params, f"{block}.attn", x,
                                                                                   n_head, drop))
                x = layer_norm(params, f"{block}.ln_2", x + mlp(params, f"{block}.mlp", x, drop))
        if self.pre_ln:  # post-LN blocks already end in a LayerNorm
            x = layer_norm(params, "transformer.ln_f", x)
        return x @ wte.T, model_state  # lm_head tied to the token embedding

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        return softmax_cross_entropy(label_batch, logits_batch, mask_batch, label_smoothing)  # per token

    def correct_predictions(self, logits, targets):
        return logits.argmax(-1) == targets

    def eval_model(self, model: dict[str, jax.Array], model_state: Any) -> dict[str, float]:
        # The PyTorch eval's fixed windows of each split, in its batches.
        metrics = {}
        for split, prefix in (("train", "train"), ("val", "validation")):
            batches = (self.windows(split, starts)
                       for starts in self.eval_starts[split].split(self.options["eval_batch_size"]))
            metrics[f"{prefix}_loss"], metrics[f"{prefix}_accuracy"] = self.evaluate(model, model_state, batches)
        return metrics


def jax_implementation(cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch GPT workload class) with the JAX model, loss and hooks."""
    return jax_class(JaxGPT, cls)
