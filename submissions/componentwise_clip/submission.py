"""AdamW with component-wise gradient norm clipping (Yang, Ma, Liu: Improving Stability of Fine-Tuning
Pretrained Language Models via Component-Wise Gradient Norm Clipping, EMNLP 2022).

Each component (parameter tensor) has its gradient clipped to norm `clip_level` on its own,
g_c <- min(1, c / ||g_c||) g_c, before the AdamW step. Unlike global clipping, a component whose
gradient explodes does not shrink the steps of the others, so components converging at different
speeds stay in step.
"""

import torch

from optimlib import schedules
from optimlib.gradient_transform import GradientTransformOptimizer
from optimlib.hyperparameters import adam_settings


class ComponentwiseClippedAdamW(GradientTransformOptimizer):
    """AdamW on gradients clipped to norm `clip_level` one parameter tensor at a time."""

    def __init__(self, params, clip_level, **adamw_kwargs):
        if clip_level <= 0:
            raise ValueError(f"clip_level={clip_level}; it must be > 0")
        super().__init__(torch.optim.AdamW(params, **adamw_kwargs),
                         lambda p: torch.nn.utils.clip_grad_norm_([p], clip_level))


def create_optimizer(params, hyperparameters, workload):
    return ComponentwiseClippedAdamW(params.parameters(), clip_level=hyperparameters.clip_level,
                                     **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
