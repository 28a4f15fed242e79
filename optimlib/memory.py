"""How much memory an optimizer keeps: the measure behind the memory claims of FRUGAL and subset-norm
Adam (their tests compare it with AdamW's)."""

from __future__ import annotations

import torch


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in the optimizer's per-parameter tensors (its memory overhead over the model)."""
    return sum(v.nbytes for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))
