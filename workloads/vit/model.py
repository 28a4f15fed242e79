"""Vision Transformer (Dosovitskiy et al., 2021): non-overlapping patches embedded by a strided
convolution, a class token and learned position embeddings, pre-LN transformer blocks
(multi-head self-attention + MLP), a final LayerNorm and a linear head on the class token
(or on the mean of the patch tokens). ViT-S = width 384, depth 12, 6 heads, MLP 1536. A 1-D
signal is a 1 x L image cut into 1 x p patches (`patch_size=(1, p)`). Dropout takes its rate per call
(AlgoPerf's `model_fn(..., dropout_rate)`), where AlgoPerf's ViT applies it: after the position
embeddings, on the attention probabilities, inside the MLP and on both residual branches."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    patch_size: tuple[int, int] = (4, 4)  # (height, width)
    width: int = 384
    depth: int = 12
    n_heads: int = 6
    mlp_dim: int = 1536
    glu: bool = False  # GLU MLP: GELU(x W) * (x V) before the output projection (AlgoPerf's vit_glu)
    pooling: str = "token"  # "token" (class token) or "mean" (mean of the patch tokens)


class SelfAttention(nn.Module):
    def __init__(self, width: int, n_heads: int):
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, dropout_rate: float):
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, tokens, self.n_heads, width // self.n_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_rate if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(batch, tokens, width))


class MLP(nn.Module):
    def __init__(self, width: int, mlp_dim: int, glu: bool):
        super().__init__()
        self.fc = nn.Linear(width, mlp_dim)
        self.gate = nn.Linear(width, mlp_dim) if glu else None
        self.proj = nn.Linear(mlp_dim, width)

    def forward(self, x, dropout_rate: float):
        hidden = F.gelu(self.fc(x))
        if self.gate is not None:
            hidden = hidden * self.gate(x)
        return self.proj(F.dropout(hidden, dropout_rate, self.training))


class Block(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.norm_1 = nn.LayerNorm(config.width)
        self.attn = SelfAttention(config.width, config.n_heads)
        self.norm_2 = nn.LayerNorm(config.width)
        self.mlp = MLP(config.width, config.mlp_dim, config.glu)

    def forward(self, x, dropout_rate: float):
        x = x + F.dropout(self.attn(self.norm_1(x), dropout_rate), dropout_rate, self.training)
        return x + F.dropout(self.mlp(self.norm_2(x), dropout_rate), dropout_rate, self.training)


class ViT(nn.Module):
    def __init__(self, config: ViTConfig, in_channels: int, image_shape: tuple[int, int], n_classes: int):
        super().__init__()
        if image_shape[0] % config.patch_size[0] or image_shape[1] % config.patch_size[1]:
            raise ValueError(f"image shape {image_shape} is not a multiple of patch_size {config.patch_size}")
        if config.pooling not in ("token", "mean"):
            raise ValueError(f"pooling={config.pooling!r}; valid: 'token', 'mean'")
        self.config = config
        n_patches = (image_shape[0] // config.patch_size[0]) * (image_shape[1] // config.patch_size[1])
        self.patch_embed = nn.Conv2d(in_channels, config.width, config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.width)) if config.pooling == "token" else None
        n_tokens = n_patches + (config.pooling == "token")
        self.pos_embed = nn.Parameter(torch.randn(1, n_tokens, config.width) * 0.02)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.depth)])
        self.norm_f = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, n_classes)
        self.apply(self._init_weights)
        nn.init.zeros_(self.head.weight)  # zero head, as in big_vision: the first logits are uniform

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x, dropout_rate: float = 0.0):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, patches, width)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = F.dropout(x + self.pos_embed, dropout_rate, self.training)
        for block in self.blocks:
            x = block(x, dropout_rate)
        x = self.norm_f(x)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)
        return self.head(pooled)
