"""DLRM-small (Naumov et al. 2019, "Deep Learning Recommendation Model for Personalization and
Recommendation Systems") as in AlgoPerf's criteo1tb workload.

Dense features -> bottom MLP; each categorical feature -> a row of one shared embedding table;
the bottom MLP's output and the 26 embeddings interact through all pairwise dot products, which,
concatenated with the bottom output, feed the top MLP that outputs one click logit.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class DLRMConfig:
    vocab_size: int = 4 * 1024 * 1024
    num_dense_features: int = 13
    num_sparse_features: int = 26
    embed_dim: int = 128
    bottom_mlp_dims: tuple[int, ...] = (512, 256, 128)  # the last one must equal embed_dim
    top_mlp_dims: tuple[int, ...] = (1024, 1024, 512, 256, 1)
    # embeddings ~ U(-m/sqrt(vocab_size), m/sqrt(vocab_size)); AlgoPerf's embed-init variant uses m = sqrt(vocab_size)
    embedding_init_multiplier: float = 1.0


def mlp(dims: list[int], final_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        linear = nn.Linear(fan_in, fan_out)
        # AlgoPerf's initialisation: Glorot-normal weights, biases ~ N(0, 1/fan_out)
        nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
        nn.init.normal_(linear.bias, 0.0, math.sqrt(1.0 / fan_out))
        layers.append(linear)
        if final_activation or i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DotInteraction(nn.Module):
    """All pairwise dot products of the feature vectors (the strict upper triangle)."""

    def __init__(self, num_vectors: int):
        super().__init__()
        rows, cols = torch.triu_indices(num_vectors, num_vectors, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n(n-1)/2)
        gram = torch.bmm(vectors, vectors.transpose(1, 2))
        return gram[:, self.rows, self.cols]


class DLRM(nn.Module):
    def __init__(self, config: DLRMConfig):
        super().__init__()
        assert config.bottom_mlp_dims[-1] == config.embed_dim, "the bottom MLP must end in embed_dim"
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        scale = config.embedding_init_multiplier / math.sqrt(config.vocab_size)
        nn.init.uniform_(self.embedding.weight, -scale, scale)
        self.bot_mlp = mlp([config.num_dense_features, *config.bottom_mlp_dims], final_activation=True)
        num_vectors = config.num_sparse_features + 1
        self.interaction = DotInteraction(num_vectors)
        top_in = config.embed_dim + num_vectors * (num_vectors - 1) // 2
        self.top_mlp = mlp([top_in, *config.top_mlp_dims], final_activation=False)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        """dense (B, 13) float, sparse (B, 26) embedding rows -> click logits (B,). Dropout (rate per call,
        AlgoPerf's `model_fn(..., dropout_rate)`) on the input of the last top layer, where AlgoPerf puts it."""
        bottom = self.bot_mlp(dense)
        vectors = torch.cat([bottom[:, None, :], self.embedding(sparse)], dim=1)
        hidden = self.top_mlp[:-1](torch.cat([bottom, self.interaction(vectors)], dim=1))
        return self.top_mlp[-1](F.dropout(hidden, dropout_rate, self.training)).squeeze(-1)
