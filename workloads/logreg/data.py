"""Datasets of the logistic-regression suite and the reference optimum f* of each problem."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, special

from harness.core.results import atomic_write_json
from harness.core.spec import DataMissingError


def sklearn_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled real datasets (they install offline)."""
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
              "wine": datasets.load_wine, "iris": datasets.load_iris}[name]
    bunch = loader()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def illconditioned_dataset(n: int = 4000, d: int = 40, scale_ratio: float = 150.0, seed: int = 0):
    """Synthetic binary problem whose feature scales span `scale_ratio` (variance ratio squared):
    seeded, with a planted separating direction and logistic label noise."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, -np.log10(scale_ratio), d)
    X = rng.standard_normal((n, d)) * scales
    w_true = rng.standard_normal(d) / scales
    p = special.expit(X @ w_true / np.sqrt(d))
    y = (rng.random(n) < p).astype(np.int64)
    return X, y


def libsvm_dataset(path: Path, n_features: int | None, prepare_name: str) -> tuple[np.ndarray, np.ndarray]:
    """A LIBSVM/svmlight file (a9a, w8a, covtype, ...); labels {-1,+1} or {1,2} map to {0,1}."""
    from sklearn.datasets import load_svmlight_file

    if not Path(path).exists():
        raise DataMissingError(
            f"{path} is missing; prepare it with: python scripts/prepare_data.py {prepare_name} "
            f"--data-dir {Path(path).parent.parent}"
        )
    X, y = load_svmlight_file(str(path), n_features=n_features)
    labels = np.unique(y)
    if len(labels) != 2:
        raise ValueError(f"{path}: expected a binary LIBSVM file, found labels {labels.tolist()}")
    return np.asarray(X.todense(), dtype=np.float64), (y == labels[1]).astype(np.int64)


def split(X: np.ndarray, y: np.ndarray, validation_fraction: float = 0.2):
    """A fixed (seed 0) split, independent of the trial seed."""
    order = np.random.default_rng(0).permutation(len(y))
    n_val = int(round(validation_fraction * len(y)))
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def objective(theta: np.ndarray, X: np.ndarray, y: np.ndarray, n_classes: int, l2: float):
    """Mean logistic loss + l2/2 ||W||^2 (bias unregularised) and its gradient, in float64."""
    d = X.shape[1]
    if n_classes == 2:
        w, b = theta[:d], theta[d]
        z = X @ w + b
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        r = (special.expit(z) - y) / len(y)
        grad = np.concatenate([X.T @ r + l2 * w, [r.sum()]])
        return loss + 0.5 * l2 * w @ w, grad
    W, b = theta[: d * n_classes].reshape(d, n_classes), theta[d * n_classes:]
    Z = X @ W + b
    logsumexp = special.logsumexp(Z, axis=1)
    loss = np.mean(logsumexp - Z[np.arange(len(y)), y])
    P = np.exp(Z - logsumexp[:, None])
    P[np.arange(len(y)), y] -= 1.0
    P /= len(y)
    grad = np.concatenate([(X.T @ P + l2 * W).ravel(), P.sum(axis=0)])
    return loss + 0.5 * l2 * np.sum(W * W), grad


def optimum(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float, cache_dir: Path | None) -> dict:
    """f* by L-BFGS to a gradient norm below 1e-10, cached on disk by a hash of the problem."""
    key = hashlib.sha256(X.tobytes() + y.tobytes() + repr((n_classes, l2)).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"logreg-optimum-{key}.json" if cache_dir else None
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    n_params = (X.shape[1] + 1) * (1 if n_classes == 2 else n_classes)
    if len(y) * n_params > 1_000_000:  # small problems solve in well under a second
        print(f"solving for the optimum f* of a {len(y):,} x {X.shape[1]} logistic regression (L-BFGS, cached in "
              f"{cache_dir or 'memory only'})", file=sys.stderr, flush=True)
    solution = optimize.minimize(objective, np.zeros(n_params), args=(X, y, n_classes, l2), jac=True,
                                 method="L-BFGS-B", options={"maxiter": 100_000, "maxfun": 200_000,
                                                             "gtol": 1e-12, "ftol": 1e-16})
    f_star, grad = objective(solution.x, X, y, n_classes, l2)
    result = {"f_star": float(f_star), "grad_norm": float(np.linalg.norm(grad)), "iterations": int(solution.nit)}
    if cache is not None:
        atomic_write_json(cache, result)
    return result
