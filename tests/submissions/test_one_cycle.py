import math

import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def cycle_reference(c, length, div, final_div, annihilation):
    """Smith & Topin's 1cycle: (lr multiplier of max_lr, momentum) at cycle step c."""
    half = max(1, round((1 - annihilation) * length / 2))
    if c < half:
        return 1 / div + (1 - 1 / div) * c / half, 0.95 - 0.10 * c / half
    if c < 2 * half:
        return 1 - (1 - 1 / div) * (c - half) / half, 0.85 + 0.10 * (c - half) / half
    progress = min(1.0, (c - 2 * half) / max(1, length - 2 * half))
    return 1 / div - (1 / div - 1 / (div * final_div)) * progress, 0.95


def one_cycle_reference(problem, hp, theta0, steps):
    """LR range test (geometric ramp, EMA-smoothed loss, stop at 4x the best), max_lr = scale x the
    rate at the best smoothed loss, restart from theta0, then the cycle with heavy-ball SGD
    (buffer = mom * buffer + g + wd x, x -= lr * buffer)."""
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    test_steps = max(2, round(hp["range_test_fraction"] * horizon))
    lo, hi, wd = hp["range_min_lr"], hp["range_max_lr"], hp["weight_decay"]
    ramp = lambda s: lo * (hi / lo) ** (s / (test_steps - 1))  # noqa: E731
    x, buffer, s, smoothed, best, best_lr, cycle_start, max_lr = theta0.copy(), 0.0, 0, 0.0, math.inf, lo, None, None
    out = []
    for _ in range(steps):
        f, g = problem.loss_and_grad(x)
        if cycle_start is None:
            diverging = False
            if s > 0:
                smoothed = 0.98 * smoothed + 0.02 * f
                unbiased = smoothed / (1 - 0.98**s)
                if unbiased < best:
                    best, best_lr = unbiased, ramp(s - 1)
                diverging = not math.isfinite(f) or unbiased > 4 * best
            if not diverging and s < test_steps:
                buffer = 0.95 * buffer + g + wd * x
                x = x - ramp(s) * buffer
                s += 1
                out.append(x)
                continue
            max_lr, x, buffer, cycle_start = hp["max_lr_scale"] * best_lr, theta0.copy(), 0.0, s
            f, g = problem.loss_and_grad(x)
        multiplier, momentum = cycle_reference(s - cycle_start, max(1, horizon - cycle_start), hp["div_factor"],
                                               hp["final_div_factor"], hp["annihilation_fraction"])
        buffer = momentum * buffer + g + wd * x
        x = x - max_lr * multiplier * buffer
        s += 1
        out.append(x)
    return out, cycle_start, test_steps


@pytest.mark.parametrize("range_max_lr", [3.0, 1e4])
def test_one_cycle_matches_paper_procedure(range_max_lr):
    """range_max_lr 3: the range test runs its 10 steps; 1e4: it stops early on divergence."""
    problem = LogisticProblem()
    theta0 = np.random.default_rng(15).standard_normal(problem.d + 1)
    hp = {"range_test_fraction": 0.25, "range_min_lr": 1e-2, "range_max_lr": range_max_lr, "max_lr_scale": 0.5,
          "div_factor": 10.0, "final_div_factor": 100.0, "annihilation_fraction": 0.2, "momentum_max": 0.95,
          "momentum_min": 0.85, "weight_decay": 1e-2, "step_hint_factor": 0.4}
    got = run_submission("one_cycle", hp, problem, 45, theta0)
    want, cycle_start, test_steps = one_cycle_reference(problem, hp, theta0, 45)
    assert (cycle_start < test_steps) == (range_max_lr > 100), (cycle_start, test_steps)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_one_cycle_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "one_cycle", load_submission("one_cycle").metadata["tuned_logreg"])
