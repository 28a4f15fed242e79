"""NAME: heavy-ball SGD with linear warm-up and cosine decay over the workload's step_hint, through the
short (optimizer factory) path. Replace the optimizer with your method; docs/submission_api.md has the
rest of the API (AlgoPerf's functions, data selection, batch sizes)."""

import math

import torch


def create_optimizer(params, hyperparameters, workload):
    return torch.optim.SGD(params.parameters(), lr=hyperparameters.learning_rate,
                           momentum=1.0 - hyperparameters.one_minus_beta1,
                           weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    """The learning-rate multiplier at `step`: a plain function of the step (optax-style)."""
    warmup = max(1, int(hyperparameters.warmup_factor * step_hint))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, step_hint - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))
