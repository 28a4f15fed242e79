"""Newton-Schulz orthogonalization: the approximate polar factor U V^T of a matrix G = U S V^T, as
Muon (Jordan et al., 2024) computes it, with Turbo-Muon's optional AOL preconditioning."""

from __future__ import annotations

import torch

# Quintic coefficients (a, b, c) of X <- a X + (b A + c A^2) X, A = X X^T, one tuple per iteration.
MUON_NS_COEFFICIENTS = ((3.4445, -4.7750, 2.0315),) * 5


def orthogonalize(G: torch.Tensor, coefficients, aol_preconditioning: bool = False, eps: float = 1e-7) -> torch.Tensor:
    """Approximate polar factor U V^T of a matrix G = U S V^T by Newton-Schulz iterations.

    Without preconditioning G is first divided by its Frobenius norm (spectral norm <= 1). With AOL
    preconditioning (Turbo-Muon) each row i of G is scaled by (sum_j |G G^T|_ij)^-1/2, which also
    bounds the spectral norm by 1 but lands closer to orthogonal, and the Gram matrix computed for
    that scaling is reused by the first iteration.
    """
    tall = G.shape[0] > G.shape[1]
    X = G.mT if tall else G
    gram = None
    if aol_preconditioning:
        gram = X @ X.mT
        scale = gram.abs().sum(dim=-1).clamp_min(eps).rsqrt()
        X = X * scale[:, None]
        gram = gram * scale[:, None] * scale[None, :]
    else:
        X = X / (torch.linalg.matrix_norm(X) + eps)
    for a, b, c in coefficients:
        A = X @ X.mT if gram is None else gram
        gram = None
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.mT if tall else X
