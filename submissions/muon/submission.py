"""Muon (Jordan et al., 2024; the baseline of Boissin et al., "Turbo-Muon: Accelerating
Orthogonality-Based Optimization with Pre-Conditioning"): momentum whose update for each matrix
(a weight of two or more dimensions, flattened to out x rest) is orthogonalised by five quintic
Newton-Schulz iterations, and AdamW for every other parameter:
  B <- mu B + G,  U = G + mu B (Nesterov) or B,  O = NS(U / ||U||_F),  W <- W (1 - lr wd) - lr s O,
with s = sqrt(max(1, A / B)) over the parameter's last two dimensions A x B, as the reference code
(1 for a square conv kernel). The optimizer is optimlib/muon.py's, shared with `turbo_muon`.
"""

from optimlib import schedules
from optimlib.muon import muon_from_hyperparameters


def create_optimizer(params, hyperparameters, workload):
    return muon_from_hyperparameters(params, hyperparameters)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
