"""AdamW (Loshchilov & Hutter, Decoupled Weight Decay Regularization) with linear warm-up and
cosine decay over the workload's step_hint, through the short (optimizer factory) path."""

import torch

from optimlib import schedules


def create_optimizer(params, hyperparameters, workload):
    return torch.optim.AdamW(
        params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=hyperparameters.epsilon,
        weight_decay=hyperparameters.weight_decay,
    )


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
