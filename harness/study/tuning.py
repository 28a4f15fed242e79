"""AlgoPerf's tuning rulesets as lists of trials.

External tuning: `studies` independent studies of `trials` points each, drawn from the submission's
`tuning_search_space.json` (scrambled Halton, seeded by the study, so every study draws its own
points). Self-tuning: no search space; one run per study with the submission's defaults and
1.5 x the workload's budget. The per-workload time is the median over studies of the fastest trial
that reached the target (harness/study/scoring.py: study_table / median_over_studies).

This module only builds `TrialSpec`s; harness/study/sweep.py runs them, and a finished trial is skipped,
so running the same grid again resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from harness.core.runner import TrialSpec
from harness.core.search_space import SearchSpaceError, merged
from harness.core.submission import Submission

RULESETS = ("external", "self")
SELF_TUNING_BUDGET_MULTIPLIER = 1.5  # AlgoPerf: self-tuning submissions get 1.5 x the external budget


def study_seed(base_seed: int, study: int) -> int:
    """Study `study` (from 1) trains with this seed and, for external tuning, draws its points with it."""
    return base_seed + study


def study_grid(
    submission: Submission,
    template: TrialSpec,
    ruleset: str,
    trials: int = 5,
    studies: int = 3,
    overrides: Mapping[str, Any] | None = None,
) -> list[TrialSpec]:
    """The trials of one submission on one workload under `ruleset`.

    `template` carries the workload, submission reference, preset, base seed, budget multiplier and
    eval settings; each returned spec replaces its placement, seed, hyperparameters (and, for
    self-tuning, the budget). `overrides` (hp.NAME=VALUE) are applied on top of every point.
    """
    if ruleset not in RULESETS:
        raise ValueError(f"tuning={ruleset!r} is not a ruleset; valid: {list(RULESETS)}")
    if studies < 1 or trials < 1:
        raise ValueError(f"trials and studies must be >= 1, got trials={trials}, studies={studies}")
    overrides = dict(overrides or {})
    specs = []
    for study in range(1, studies + 1):
        seed = study_seed(template.seed, study)
        if ruleset == "self":
            specs.append(dataclasses.replace(
                template, ruleset="self", study=study, trial=None, seed=seed, hyperparameters=overrides,
                budget_multiplier=template.budget_multiplier * SELF_TUNING_BUDGET_MULTIPLIER))
            continue
        if submission.search_space is None:
            raise SearchSpaceError(
                f"submission {submission.name!r} has no tuning_search_space.json; external tuning needs "
                "one (or use tuning=self)")
        points = submission.search_space.sample(trials, seed=seed)
        specs += [dataclasses.replace(template, ruleset="external", study=study, trial=trial, seed=seed,
                                      hyperparameters=merged({}, point, [overrides]))
                  for trial, point in enumerate(points, start=1)]
    return specs
