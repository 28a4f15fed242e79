"""MoMo-Adam (Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates"): the MoMo step
size with Adam's diagonal preconditioner; the optimizer is optimlib/momo.py's, shared with `momo`."""

from optimlib import schedules
from optimlib.momo import Momo


def create_optimizer(params, hyperparameters, workload):
    return Momo(params.parameters(), lr=hyperparameters.learning_rate, beta=1.0 - hyperparameters.one_minus_beta1,
                weight_decay=hyperparameters.weight_decay, lower_bound=hyperparameters.lower_bound,
                estimate_lower_bound=bool(hyperparameters.estimate_lower_bound),
                adam_beta2=hyperparameters.beta2, eps=hyperparameters.epsilon)


def schedule(step, step_hint, hyperparameters):
    """As `momo`: AlgoPerf's warm-up + cosine over step_hint_factor * step_hint."""
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
