"""Turbo-Muon (Boissin, Massena, Mamalet & Serrurier, "Turbo-Muon: Accelerating Orthogonality-Based
Optimization with Pre-Conditioning"): Muon whose Newton-Schulz input is preconditioned by AOL
row rescaling instead of Frobenius normalisation, which starts it closer to orthogonal and lets
it drop one of the five iterations. Coefficients: the official code's last four quintic steps.
The optimizer is optimlib/muon.py's (shared with `muon`), `orthogonalize` optimlib/newton_schulz.py's.
"""

from optimlib import schedules
from optimlib.muon import muon_from_hyperparameters

TURBO_NS_COEFFICIENTS = (
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)


def create_optimizer(params, hyperparameters, workload):
    return muon_from_hyperparameters(params, hyperparameters, coefficients=TURBO_NS_COEFFICIENTS,
                                     aol_preconditioning=True)


def schedule(step, step_hint, hyperparameters):
    """As `muon`: warm-up + cosine over step_hint_factor * step_hint."""
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
