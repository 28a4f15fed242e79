"""SGD with heavy-ball momentum (Polyak, 1964), or Nesterov momentum when `nesterov` is true,
with L2 weight decay, linear warm-up and cosine decay over step_hint (AlgoPerf's momentum baselines)."""

import torch

from optimlib import schedules


def create_optimizer(params, hyperparameters, workload):
    return torch.optim.SGD(
        params.parameters(),
        lr=hyperparameters.learning_rate,
        momentum=1.0 - hyperparameters.one_minus_beta1,
        nesterov=bool(hyperparameters.nesterov),
        weight_decay=hyperparameters.weight_decay,
    )


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
