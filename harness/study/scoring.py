"""AlgoPerf's scoring: per-workload times from study grids, performance ratios, performance
profiles and the benchmark score, plus the extras timetrial reports beside it.

t(s, w)    = median over studies of the fastest trial of study k that reached the target (inf: none)
r(s, w)    = t(s, w) / min_s t(s, w); ratios above r_max (= 4) count as infinite
rho_s(tau) = fraction of (scored) workloads with r(s, w) <= tau
score(s)   = integral of rho_s from 1 to r_max, divided by (r_max - 1)

Variant rule (AlgoPerf v0.5 held-out workloads, a switch): the time on a base workload counts only
if the submission also reaches the target on every variant of it; the variants themselves are not
scored. Extras: geometric-mean speedup against a reference submission (misses count as the
workload's budget) and bootstrap confidence intervals over studies. Every function works on a
submission x workload table, so the same code scores seconds and steps.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

R_MAX = 4.0

#: A statistic of a submission x workload time table, one value per submission.
Statistic = Callable[[pd.DataFrame], pd.Series]


def study_table(frame: pd.DataFrame, column: str) -> pd.Series:
    """One value per (submission, workload, study): the fastest trial of the study that reached the
    target, inf when none did. `frame` has columns submission, workload, study, reached_target and
    `column` (seconds or steps)."""
    values = frame[column].astype(float).where(frame["reached_target"].astype(bool), np.inf)
    return frame.assign(value=values).groupby(["submission", "workload", "study"])["value"].min()


def median_over_studies(per_study: pd.Series) -> pd.DataFrame:
    """submission x workload: the median over studies (a study without a hit is inf, so a majority
    of misses makes the workload a miss)."""
    return per_study.groupby(["submission", "workload"]).median().unstack("workload")


def missing_as_inf(times: pd.DataFrame) -> pd.DataFrame:
    """A submission that has no trial on a workload has missed it."""
    return times.astype(float).fillna(np.inf)


def performance_ratios(times: pd.DataFrame, r_max: float = R_MAX) -> pd.DataFrame:
    """times: submission x workload (inf = miss). A workload nobody reaches gives inf for all."""
    times = missing_as_inf(times)
    best = times.min(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = times / best
    return ratios.where(np.isfinite(ratios) & (ratios <= r_max), np.inf)


def performance_profile(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """rho_s(tau) for each submission (rows) at each tau (columns)."""
    n_workloads = ratios.shape[1]
    values = (ratios.to_numpy()[:, :, None] <= taus[None, None, :]).sum(axis=1) / n_workloads
    return pd.DataFrame(values, index=ratios.index, columns=taus)


def benchmark_score(times: pd.DataFrame, r_max: float = R_MAX, profile_points: int | None = None) -> pd.Series:
    """Integral of rho_s over [1, r_max], normalised to [0, 1]: exact for the step function by default;
    with `profile_points`, AlgoPerf's scoring code's number instead (the trapezoid rule on that many
    evenly spaced taus; its leaderboards use 100), which differs from the exact one by < 1 / points."""
    if times.empty:
        return pd.Series(dtype=float, name="score")
    if profile_points is not None:
        taus = np.linspace(1.0, r_max, profile_points)
        profile = performance_profile(performance_ratios(times, r_max), taus).to_numpy()
        return pd.Series(np.trapezoid(profile, taus, axis=1) / (r_max - 1.0), index=times.index, name="score")
    ratios = performance_ratios(times, r_max).to_numpy()
    # A workload solved at ratio r adds a step of 1/n at tau = r, worth (r_max - r) / (r_max - 1) / n.
    contribution = np.where(np.isfinite(ratios), (r_max - ratios) / (r_max - 1.0), 0.0)
    return pd.Series(contribution.mean(axis=1), index=times.index, name="score")


def variants_present(workloads: Sequence[str], variant_of: Mapping[str, str | None]) -> dict[str, list[str]]:
    """base -> its variants, for the bases among `workloads` (variant_of: workload -> base or None)."""
    variants: dict[str, list[str]] = {}
    for workload in workloads:
        base = variant_of.get(workload)
        if base is not None:
            variants.setdefault(base, []).append(workload)
    return variants


def scored_times(times: pd.DataFrame, variant_of: Mapping[str, str | None], variant_rule: bool = True) -> pd.DataFrame:
    """The table the score is computed on: base workloads only; with `variant_rule`, a base time
    becomes inf when the submission misses any variant of that base in the table."""
    times = missing_as_inf(times)
    bases = [w for w in times.columns if variant_of.get(w) is None]
    scored = times[bases].copy()
    if variant_rule:
        for base, variants in variants_present(list(times.columns), variant_of).items():
            if base in scored:
                solved_all = np.isfinite(times[variants]).all(axis=1)
                scored[base] = scored[base].where(solved_all, np.inf)
    return scored


def geometric_mean_speedup(times: pd.DataFrame, reference: str, budgets: Mapping[str, float]) -> pd.Series:
    """exp(mean_w log(t(reference, w) / t(s, w))): > 1 is faster than the reference. A miss counts
    as the workload's budget, so missing a workload the reference solves is a slowdown."""
    if reference not in times.index:
        raise KeyError(f"reference submission {reference!r} is not in the table; valid: {sorted(times.index)}")
    missing = sorted(set(times.columns) - set(budgets))
    if missing:
        raise KeyError(f"no budget for workloads {missing}")
    budget = pd.Series({w: float(budgets[w]) for w in times.columns})
    filled = missing_as_inf(times)
    filled = filled.where(np.isfinite(filled), budget, axis=1).clip(upper=budget, axis=1)
    log_ratio = np.log(filled.loc[reference]) - np.log(filled)
    return np.exp(log_ratio.mean(axis=1)).rename("speedup")


def bootstrap_ci(per_study: pd.Series, statistic: Statistic, n_boot: int = 200, level: float = 0.95,
                 seed: int = 0) -> pd.DataFrame:
    """Percentile bootstrap over studies: each draw resamples, for every (submission, workload),
    its studies with replacement, takes the median and applies `statistic` to the table.
    Returns one row per submission with columns low and high."""
    values = per_study.groupby(["submission", "workload"]).agg(list)
    cells = values.unstack("workload")
    submissions, workloads = list(cells.index), list(cells.columns)
    n_max = max(len(v) for v in values)
    # (S, W, n_max) with each cell's studies first; NaN pads cells with fewer studies.
    grid = np.full((len(submissions), len(workloads), n_max), np.nan)
    counts = np.zeros((len(submissions), len(workloads)), dtype=int)
    for i, submission in enumerate(submissions):
        for j, workload in enumerate(workloads):
            cell = cells.iat[i, j]
            if isinstance(cell, list):
                grid[i, j, :len(cell)] = cell
                counts[i, j] = len(cell)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        index = np.floor(rng.random(grid.shape) * counts[:, :, None]).astype(int)
        sample = np.take_along_axis(grid, np.minimum(index, n_max - 1), axis=2)
        sample = np.where(np.arange(n_max) < counts[:, :, None], sample, np.nan)
        with np.errstate(invalid="ignore"):
            medians = _nanmedian_with_inf(sample)
        table = pd.DataFrame(medians, index=submissions, columns=workloads)
        table = table.where(counts > 0, np.nan)  # cells never run stay missing
        draws.append(statistic(table).reindex(submissions).to_numpy())
    stacked = np.array(draws)
    tail = (1.0 - level) / 2.0
    return pd.DataFrame({"low": np.quantile(stacked, tail, axis=0),
                         "high": np.quantile(stacked, 1.0 - tail, axis=0)}, index=submissions)


def _nanmedian_with_inf(sample: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN padding; inf counts as a value (a missed study)."""
    ordered = np.sort(sample, axis=-1)  # NaN sorts last, after inf
    n = (~np.isnan(sample)).sum(axis=-1)
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.maximum(n // 2, 0)[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        median = np.where(low == high, low, (low + high) / 2.0)
    return np.where(n > 0, median, np.nan)
