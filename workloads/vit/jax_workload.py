"""The Vision Transformer in JAX (`framework=jax`, installed by `pip install -e '.[jax]'`; docs/jax.md).

Same data, batch stream (the PyTorch stream's exact batches, converted), loss, evaluation and
metrics, target and budget as the PyTorch classes (inherited), with the plain MLP (vit) and the GLU
MLP (vit_glu) alike. No module library (flax, which the project does not install): the model is a
plain parameter dict keyed by the PyTorch model's parameter names in PyTorch's layouts
("patch_embed.weight" OIHW, "cls_token" (1, 1, C), "blocks.0.attn.qkv.weight" (3C, C), ...),
initialised by converting the PyTorch model that the same seed builds, so both frameworks start from
identical weights. `model_fn`/`loss_fn` are pure, for `jax.jit` and `jax.grad`. Dropout sits where
the PyTorch model puts it (after the position embeddings, on the attention probabilities, inside the
MLP and on both residual branches) and uses `rng` as a `jax.random` key when `dropout_rate` > 0.
"""

from __future__ import annotations

from harness.core.spec import Workload
from workloads.images.jax_workload import JaxImageClassification, conv2d  # says how to install jax if absent
from workloads.jax_common import Dropout, attention, jax_class, layer_norm, linear

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402


def mlp(params, prefix: str, x: jax.Array, drop: Dropout) -> jax.Array:
    """`MLP.forward`: GELU (the erf form, as F.gelu), gated by a second projection where it has one (GLU)."""
    hidden = jax.nn.gelu(linear(params, f"{prefix}.fc", x), approximate=False)
    if f"{prefix}.gate.weight" in params:
        hidden = hidden * linear(params, f"{prefix}.gate", x)
    return linear(params, f"{prefix}.proj", drop(hidden))


def block(params, prefix: str, x: jax.Array, n_heads: int, drop: Dropout) -> jax.Array:
    """`Block.forward`: pre-LN self-attention and MLP, each a dropped-out residual branch."""
    qkv = linear(params, f"{prefix}.attn.qkv", layer_norm(params, f"{prefix}.norm_1", x))
    x = x + drop(linear(params, f"{prefix}.attn.proj", attention(qkv, n_heads, False, drop)))
    return x + drop(mlp(params, f"{prefix}.mlp", layer_norm(params, f"{prefix}.norm_2", x), drop))


class JaxViT(JaxImageClassification):
    """Mixin over a PyTorch ViT workload class: the JAX model."""

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        config = self.size.options["model"]
        drop = Dropout(dropout_rate, mode, rng)
        patches = conv2d(params, "patch_embed", augmented_and_preprocessed_input_batch["inputs"],
                         stride=config.patch_size)
        x = patches.reshape(*patches.shape[:2], -1).transpose(0, 2, 1)  # (batch, patches, width)
        if "cls_token" in params:
            x = jnp.concatenate([jnp.broadcast_to(params["cls_token"], (x.shape[0], 1, x.shape[2])), x], axis=1)
        x = drop(x + params["pos_embed"])
        for i in range(config.depth):
            x = block(params, f"blocks.{i}", x, config.n_heads, drop)
        x = layer_norm(params, "norm_f", x)
        pooled = x[:, 0] if "cls_token" in params else x.mean(1)
        return linear(params, "head", pooled), model_state


def jax_implementation(cls: type[Workload]) -> type[Workload]:
    """`cls` (a PyTorch ViT workload class) with the JAX model, loss and hooks."""
    return jax_class(JaxViT, cls)
