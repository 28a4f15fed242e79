"""AdamW with the linear-decay schedule of Defazio et al. (When, Why and How Much? Adaptive
Learning Rate Scheduling by Refinement): lr_t = peak * (1 - t/T) after an optional linear warm-up,
T = the workload's step_hint. The paper shows this is worst-case optimal for the last iterate and
matches or beats cosine decay in practice."""

import torch

from optimlib import schedules
from optimlib.hyperparameters import adam_settings


def create_optimizer(params, hyperparameters, workload):
    """The `adamw` baseline's AdamW; only the schedule differs."""
    return torch.optim.AdamW(params.parameters(), **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_linear_decay(step, step_hint, hyperparameters.warmup_factor)
