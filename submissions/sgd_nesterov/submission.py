"""SGD with Nesterov momentum: the heavy-ball baseline (`sgd_momentum`) with `nesterov` fixed to true
(metadata.json), kept as its own leaderboard row as in AlgoPerf's baselines."""

import torch

from optimlib import schedules
from optimlib.hyperparameters import sgd_momentum_settings


def create_optimizer(params, hyperparameters, workload):
    return torch.optim.SGD(params.parameters(), nesterov=bool(hyperparameters.nesterov),
                           **sgd_momentum_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
