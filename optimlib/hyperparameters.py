"""Optimizer keyword arguments from the benchmark's conventional hyperparameter names (learning_rate,
one_minus_beta1, beta2, epsilon, weight_decay), and torch.optim's AdamW and heavy-ball SGD built from
them, for submissions that take these names as they are or wrap those optimizers as a base.
`hyperparameters` is anything with those attributes (the harness's read-only Hyperparameters)."""

from __future__ import annotations

import torch


def adam_settings(hyperparameters) -> dict:
    """lr, betas, eps, weight_decay: torch.optim.AdamW's keyword arguments, and the Adam variants'."""
    return {"lr": hyperparameters.learning_rate, "betas": (1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
            "eps": hyperparameters.epsilon, "weight_decay": hyperparameters.weight_decay}


def sgd_momentum_settings(hyperparameters) -> dict:
    """lr, momentum, weight_decay: torch.optim.SGD's keyword arguments for heavy-ball momentum."""
    return {"lr": hyperparameters.learning_rate, "momentum": 1.0 - hyperparameters.one_minus_beta1,
            "weight_decay": hyperparameters.weight_decay}


# The base optimizers a method can wrap, by the name its `base_optimizer` hyperparameter gives.
BASE_OPTIMIZERS = {
    "sgd_momentum": lambda params, hp: torch.optim.SGD(params, **sgd_momentum_settings(hp)),
    "adamw": lambda params, hp: torch.optim.AdamW(params, **adam_settings(hp)),
}
