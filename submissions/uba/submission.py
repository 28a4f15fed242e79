"""UBA (Tang, Dong, Zeng, Zhou & Lin, Stepsize anything: A unified learning rate schedule for
budgeted-iteration training, NeurIPS 2025): the Unified Budget-Aware schedule, derived from a
min-max problem over the landscape curvature for a fixed iteration budget T. With
c_t = 1 + cos(pi t / T) (2 at the start, 0 at the budget), the learning rate is

    eta_t = eta_min + (eta_max - eta_min) * 2 c_t / (2 phi + (2 - phi) c_t)

phi > 0 is its single shape parameter: phi = 2 gives cosine annealing, phi < 2 keeps the rate
high for longer and drops it late, phi > 2 decays early (the paper links phi to the condition
number). Here T is the workload's budget step_hint (minus an optional linear warm-up), eta_max
the base optimizer's learning rate and eta_min = final_lr_ratio * eta_max. The base optimizer is
SGD with heavy-ball momentum or AdamW (`base_optimizer`); a schedule is a plain function of the step.
"""

import math

import torch

from optimlib import schedules

BASE_OPTIMIZERS = {
    "sgd_momentum": lambda params, hp: torch.optim.SGD(params, lr=hp.learning_rate, momentum=1.0 - hp.one_minus_beta1,
                                                       weight_decay=hp.weight_decay),
    "adamw": lambda params, hp: torch.optim.AdamW(params, lr=hp.learning_rate, betas=(1.0 - hp.one_minus_beta1, hp.beta2),
                                                  eps=hp.epsilon, weight_decay=hp.weight_decay),
}


def uba(step: int, budget: int, phi: float, final_lr_ratio: float = 0.0) -> float:
    """The UBA multiplier of eta_max at `step` of a `budget`-step run (final_lr_ratio after it)."""
    if not phi > 0:
        raise ValueError(f"uba: phi must be > 0 (phi = 2 is cosine), got phi={phi}")
    if not 0.0 <= final_lr_ratio <= 1.0:
        raise ValueError(f"uba: final_lr_ratio must be in [0, 1], got final_lr_ratio={final_lr_ratio}")
    progress = min(1.0, max(0.0, step / max(1, budget)))
    c = 1.0 + math.cos(math.pi * progress)
    shape = 2.0 * c / (2.0 * phi + (2.0 - phi) * c)
    return final_lr_ratio + (1.0 - final_lr_ratio) * shape


def create_optimizer(params, hyperparameters, workload):
    if hyperparameters.base_optimizer not in BASE_OPTIMIZERS:
        raise ValueError(f"uba: base_optimizer={hyperparameters.base_optimizer!r}; valid: {sorted(BASE_OPTIMIZERS)}")
    uba(0, 1, hyperparameters.phi, hyperparameters.final_lr_ratio)  # validate the schedule's settings up front
    return BASE_OPTIMIZERS[hyperparameters.base_optimizer](params.parameters(), hyperparameters)


def schedule(step, step_hint, hyperparameters):
    budget = max(1, round(hyperparameters.step_hint_factor * step_hint))
    warmup_steps = int(hyperparameters.warmup_factor * budget)
    if step < warmup_steps:
        return schedules.linear_warmup(step, warmup_steps)
    return uba(step - warmup_steps, budget - warmup_steps, hyperparameters.phi, hyperparameters.final_lr_ratio)
