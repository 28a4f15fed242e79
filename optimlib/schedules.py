"""Learning-rate schedules as plain functions of the step, returning a multiplier of the peak
learning rate (optax style). `step_hint` is the workload's expected number of steps."""

from __future__ import annotations

import math


def constant(step: int, step_hint: int) -> float:
    return 1.0


def linear_warmup(step: int, warmup_steps: int) -> float:
    """(step + 1) / warmup_steps up to 1: the first step already moves."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


def warmup_cosine(step: int, step_hint: int, warmup_fraction: float = 0.05, final: float = 0.0) -> float:
    """Linear warm-up over `warmup_fraction * step_hint`, then cosine decay to `final` at step_hint."""
    warmup_steps = int(warmup_fraction * step_hint)
    if step < warmup_steps:
        return linear_warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, step_hint - warmup_steps))
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_linear_decay(step: int, step_hint: int, warmup_fraction: float = 0.0, final: float = 0.0) -> float:
    """Linear warm-up, then linear decay 1 - t/T to `final` at step_hint."""
    warmup_steps = int(warmup_fraction * step_hint)
    if step < warmup_steps:
        return linear_warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, step_hint - warmup_steps))
    return final + (1.0 - final) * (1.0 - progress)


def step_decay(step: int, horizon: int, decay_factor: float = 2.0) -> float:
    """Geometric step decay over `horizon` steps: log_C(horizon) equal stages, the rate divided by
    C = decay_factor after each (the multi-stage schedule of Pan et al., 2024, for heavy ball)."""
    if decay_factor <= 1.0:
        raise ValueError(f"step_decay: decay_factor must be > 1, got {decay_factor}")
    stages = max(1, math.ceil(math.log(max(horizon, 2)) / math.log(decay_factor)))
    stage_length = max(1, math.ceil(horizon / stages))
    return decay_factor ** -min(step // stage_length, stages - 1)
