"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning
Rates"): momentum SGD whose step size comes from a model of the loss (averaged losses, gradients and
<gradient, weight> products) truncated at a lower bound f* of the loss. The optimizer, its update
and its lower-bound estimate are in optimlib/momo.py, shared with `momo_adam`.
"""

from optimlib import schedules
from optimlib.momo import Momo


def create_optimizer(params, hyperparameters, workload):
    return Momo(params.parameters(), lr=hyperparameters.learning_rate, beta=1.0 - hyperparameters.one_minus_beta,
                weight_decay=hyperparameters.weight_decay, lower_bound=hyperparameters.lower_bound,
                estimate_lower_bound=bool(hyperparameters.estimate_lower_bound),
                bias_correction=bool(hyperparameters.bias_correction))


def schedule(step, step_hint, hyperparameters):
    """MoMo adapts the step below the learning rate; the learning rate itself follows AlgoPerf's
    warm-up + cosine (the paper also pairs MoMo with decaying schedules)."""
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
