"""SGD with momentum under the schedule refinement of Defazio et al. (When, Why and How Much?
Adaptive Learning Rate Scheduling by Refinement), run as two phases inside one timed trial. The
refinement below is the paper's Algorithm 1, derived for SGD (for Adam-type steps, whose size does
not shrink with the gradient, the l2-norm rule raises the lr late in the run and overshoots).

Phase 1 (the paper's "previous run"), steps [0, T1) with T1 = first_phase_fraction * step_hint:
SGD-momentum with linear warm-up + linear decay to zero over T1 steps, recording the gradient norm
G_t = ||g_t||_2 of every step.
Phase 2, steps [T1, step_hint): the refined schedule of length T2 = step_hint - T1, computed once
from phase 1's norms: median filter (odd width ~ median_filter_fraction * T1, edges repeated), the
filtered norms resampled to T2 points, then

    w_t = G_t^-2 * sum_{p > t} G_p^-2,    lr_t = peak * w_t / max_s w_s

Phase 2 continues from phase 1's parameters and momentum buffer, so nothing is thrown away; both
phases, and the refinement itself, are on the trial's clock. The refined schedule ends at zero.
"""

import numpy as np
import scipy.ndimage
import torch

from optimlib import schedules


def refine(gradient_norms, length: int, filter_size: int) -> np.ndarray:
    """The refined lr multipliers (peak 1) for a run of `length` steps from a previous run's norms."""
    norms = scipy.ndimage.median_filter(np.asarray(gradient_norms, dtype=np.float64), size=filter_size,
                                        mode="nearest")
    norms = np.interp(np.linspace(0, len(norms) - 1, length), np.arange(len(norms)), norms)
    inverse_squares = norms**-2.0
    later = np.cumsum(inverse_squares[::-1])[::-1] - inverse_squares  # sum over p > t
    weights = inverse_squares * later
    return weights / weights.max() if weights.max() > 0 else weights


class RefinedScheduleSGD(torch.optim.SGD):
    def __init__(self, params, step_hint: int, first_phase_fraction=0.3, warmup_fraction=0.0,
                 median_filter_fraction=0.1, **sgd_settings):
        if not 0.0 < first_phase_fraction < 1.0 or not 0.0 < median_filter_fraction <= 1.0:
            raise ValueError(f"refined_schedule: first_phase_fraction={first_phase_fraction} must lie in (0, 1) "
                             f"and median_filter_fraction={median_filter_fraction} in (0, 1]")
        super().__init__(params, **sgd_settings)
        self.first_phase_steps = max(2, round(first_phase_fraction * step_hint))
        self.second_phase_steps = max(2, step_hint - self.first_phase_steps)
        # an odd window, so the median is the middle value (an even one has no single middle)
        self.filter_size = 2 * (round(median_filter_fraction * self.first_phase_steps) // 2) + 1
        self.warmup_fraction = warmup_fraction
        self.peak_lrs = [group["lr"] for group in self.param_groups]
        self.steps = 0
        self.gradient_norms: list[torch.Tensor] = []
        self.refined: np.ndarray | None = None

    def multiplier(self, step: int) -> float:
        if step < self.first_phase_steps:
            return schedules.warmup_linear_decay(step, self.first_phase_steps, self.warmup_fraction)
        if self.refined is None:
            norms = torch.stack(self.gradient_norms).cpu().numpy()
            self.refined = refine(norms, self.second_phase_steps, self.filter_size)
        index = step - self.first_phase_steps
        return float(self.refined[index]) if index < len(self.refined) else 0.0

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        if self.steps < self.first_phase_steps:
            grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
            self.gradient_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        multiplier = self.multiplier(self.steps)
        for group, peak in zip(self.param_groups, self.peak_lrs):
            group["lr"] = peak * multiplier
        super().step()
        self.steps += 1
        return loss


def create_optimizer(params, hyperparameters, workload):
    return RefinedScheduleSGD(
        params.parameters(), step_hint=workload.step_hint,
        first_phase_fraction=hyperparameters.first_phase_fraction, warmup_fraction=hyperparameters.warmup_factor,
        median_filter_fraction=hyperparameters.median_filter_fraction,
        lr=hyperparameters.learning_rate, momentum=1.0 - hyperparameters.one_minus_beta1,
        weight_decay=hyperparameters.weight_decay)
