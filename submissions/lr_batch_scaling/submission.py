"""Batch-size scaling rules for the learning rate and the training length.

A batch of k times the workload's default batch is drawn by concatenating k batches of the
stream (`data_selection`). The learning rate found at the default batch is rescaled:

    Adam: lr_k = lr * sqrt(k)        (Granziol et al., Learning Rates as a Function of Batch Size)
    SGD:  lr_k = lr * k              (linear scaling, same paper)

and the schedule's horizon follows Hoffer et al. (Train longer, generalize better): without
regime adaptation the large-batch run keeps the default run's number of epochs, so its cosine
decay ends after step_hint / k updates; with regime adaptation it keeps the default run's number
of *updates* (step_hint), i.e. k times the epochs, which closes the generalization gap.
"""

import math

import torch

from optimlib import schedules

LR_SCALING = {"adam": math.sqrt, "sgd": float}


def scaled_learning_rate(hyperparameters) -> float:
    if hyperparameters.base_optimizer not in LR_SCALING:
        raise ValueError(f"base_optimizer={hyperparameters.base_optimizer!r}; valid: {sorted(LR_SCALING)}")
    return hyperparameters.learning_rate * LR_SCALING[hyperparameters.base_optimizer](hyperparameters.batch_multiplier)


def schedule_horizon(step_hint: int, hyperparameters) -> int:
    """Updates until the learning rate reaches zero: step_hint with regime adaptation, else the same epochs."""
    if hyperparameters.regime_adaptation:
        return step_hint
    return max(1, math.ceil(step_hint / hyperparameters.batch_multiplier))


def create_optimizer(params, hyperparameters, workload):
    lr = scaled_learning_rate(hyperparameters)
    if hyperparameters.base_optimizer == "adam":
        return torch.optim.AdamW(params.parameters(), lr=lr, betas=(hyperparameters.beta1, hyperparameters.beta2),
                                 eps=hyperparameters.epsilon, weight_decay=hyperparameters.weight_decay)
    return torch.optim.SGD(params.parameters(), lr=lr, momentum=hyperparameters.beta1,
                           weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, schedule_horizon(step_hint, hyperparameters), hyperparameters.warmup_factor)


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    """k consecutive batches of the stream, concatenated: a batch k times the workload's default."""
    batches = [next(input_queue) for _ in range(int(hyperparameters.batch_multiplier))]
    return {key: torch.cat([batch[key] for batch in batches]) for key in batches[0]}
