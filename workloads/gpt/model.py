"""A GPT decoder in the style of nanoGPT (Karpathy) / GPT-2 (Radford et al. 2019).

Learned position embeddings, pre-LayerNorm residual blocks (post-LN as an option for the variant),
GELU MLP with 4x expansion, causal `scaled_dot_product_attention`, input and output embeddings tied.
Dropout (on the embeddings, attention probabilities and both residual branches, as nanoGPT places it)
takes its rate per call, as AlgoPerf's `model_fn(..., dropout_rate)` passes it; 0 is a no-op.
GPT-2 124M is `GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304)`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64 (faster matmuls)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    bias: bool = True
    pre_ln: bool = True  # False: post-LN, the original Transformer's placement
    init_std: float = 0.02


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_rate if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return F.dropout(self.c_proj(y), dropout_rate, self.training)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        return F.dropout(self.c_proj(F.gelu(self.c_fc(x))), dropout_rate, self.training)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.pre_ln = config.pre_ln

    def forward(self, x: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.attn(self.ln_1(x), dropout_rate)
            return x + self.mlp(self.ln_2(x), dropout_rate)
        x = self.ln_1(x + self.attn(x, dropout_rate))
        return self.ln_2(x + self.mlp(x, dropout_rate))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            # post-LN blocks already end in a LayerNorm, so only pre-LN needs the final one
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias) if config.pre_ln else nn.Identity(),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled by 1/sqrt(2 * n_layer) so the residual stream's
        # variance does not grow with depth
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=config.init_std / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, dropout_rate: float = 0.0) -> torch.Tensor:
        """Token ids (B, T) -> next-token logits (B, T, vocab_size)."""
        B, T = idx.shape
        assert T <= self.config.block_size, f"sequence length {T} > block_size {self.config.block_size}"
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = F.dropout(self.transformer.wte(idx) + self.transformer.wpe(pos), dropout_rate, self.training)
        for block in self.transformer.h:
            x = block(x, dropout_rate)
        return self.lm_head(self.transformer.ln_f(x))
