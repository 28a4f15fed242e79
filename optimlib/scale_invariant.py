"""The scale-invariant projection of AdamP and SGDP (Heo et al., "AdamP: Slowing Down the Slowdown
for Momentum Optimizers on Scale-invariant Weights").

A weight of two or more dimensions whose gradient is nearly orthogonal to it, in the channel view
(one row per output channel) or the layer view (the whole tensor), is treated as scale-invariant:
the radial component of the update is projected out and weight decay is scaled by `wd_ratio`.
"Nearly orthogonal": max |cos(w, g)| over the view's rows < delta / sqrt(row length).
"""

from __future__ import annotations

import math

import torch


def _rows(x: torch.Tensor, view: str) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) if view == "channel" else x.reshape(1, -1)


def project_scale_invariant(weight, grad, update, delta: float, wd_ratio: float, eps: float):
    """(update, weight-decay multiplier): the update with its radial part removed and `wd_ratio`
    when the weight looks scale-invariant in the channel or the layer view, else unchanged and 1."""
    for view in ("channel", "layer"):
        w, g = _rows(weight, view), _rows(grad, view)
        w_norm = w.norm(dim=1)
        cosine = (w * g).sum(dim=1).abs() / (w_norm * g.norm(dim=1)).clamp_min(eps)
        if cosine.max() < delta / math.sqrt(w.shape[1]):
            unit = w / (w_norm[:, None] + eps)
            radial = (unit * _rows(update, view)).sum(dim=1, keepdim=True) * unit
            return update - radial.reshape(update.shape), wd_ratio
    return update, 1.0
