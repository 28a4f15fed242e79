"""Leaderboard: the results tree -> one ranked table per (hardware, preset, ruleset), scored with
harness/study/scoring.py. Tables never mix hardware: each hardware fingerprint gets its own board, and
the board says which hardware it is for; a fingerprint whose speed was calibrated again (`calibrate-speed`,
harness/core/machine.py) gets one board per speed calibration, since its seconds changed meaning.

Each submission's row: benchmark score (seconds) with its bootstrap CI over studies, the same
score on steps-to-target, the geometric-mean speedup against a reference submission, misses, and
the per-workload time-to-target and steps (median over studies of each study's fastest hit).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from harness.core.machine import machine_key
from harness.core.results import load_results
from harness.study import scoring
from harness.study.tuning import SELF_TUNING_BUDGET_MULTIPLIER

HARDWARE_KEY = "provenance.hardware.fingerprint"
HARDWARE_LABEL = "provenance.hardware.label"
SPEED_CALIBRATION = "reference_step_time.speed_calibration"
MERGED = "all-machines"
NORMALIZED_TIME = "time_to_target_reference_steps"


@dataclasses.dataclass(frozen=True)
class Options:
    r_max: float = scoring.R_MAX
    profile_points: int | None = None  # None: the exact integral; 100: AlgoPerf's scoring code
    variant_rule: bool = True
    reference: str | None = None  # geometric-mean speedup against this submission, when on the board
    n_boot: int = 200
    seed: int = 0
    exclude_contended: bool = False  # drop trials whose clock was shared or moved (harness/core/contention.py)
    #: True: one board over every machine, ranked on time in reference steps (harness/core/machine.py)
    normalized: bool = False


@dataclasses.dataclass
class Board:
    hardware: str  # readable label
    fingerprint: str
    preset: str
    ruleset: str
    trials: pd.DataFrame  # the trial records behind the board (one row per trial)
    per_study: pd.Series  # (submission, workload, study) -> seconds of the study's fastest hit (inf: none)
    times: pd.DataFrame  # submission x workload, seconds (inf = miss), variants included
    steps: pd.DataFrame  # submission x workload, steps (inf = miss)
    variant_of: dict[str, str | None]
    budgets: dict[str, float]
    table: pd.DataFrame  # one row per submission, ranked
    conditions: str = ""  # '' = the ruleset's budget and no step cap; else what differs (see `conditions`)
    machines: tuple[str, ...] = ()  # a normalized board: every machine whose trials it merges
    speed_calibration: str = ""  # the machine's speed calibration its budgets came from ("": its first)

    @property
    def normalized(self) -> bool:
        return self.fingerprint == MERGED

    @property
    def title(self) -> str:
        off_ruleset = f", off the ruleset: {self.conditions}" if self.conditions else ""
        where = (f"normalized time (reference steps: seconds / the machine's reference step time), machines: "
                 f"{'; '.join(self.machines)}" if self.normalized
                 else f"hardware: {self.hardware} [{machine_key(self.fingerprint, self.speed_calibration)}]")
        return f"preset `{self.preset}`, ruleset `{self.ruleset}`{off_ruleset}, {where}"


def with_study_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials outside a study grid (rulesets such as 'bench' or 'run') count each seed as a study."""
    return frame.assign(study=frame["study"].fillna(frame["seed"]).astype(int))


def build(results_dir: Path | str, preset: str = "cpu", ruleset: str | None = None,
          options: Options = Options()) -> list[Board]:
    """Boards for every (hardware, ruleset, run conditions) found under results_dir for `preset`."""
    frame = load_results(Path(results_dir))
    if frame.empty or HARDWARE_KEY not in frame:
        return []
    return build_from_frame(with_study_columns(frame), preset, ruleset, options)


def what_is_there(results_dir: Path | str) -> str:
    """'preset cpu: rulesets self, tuned; preset tiny: ...' for the trials under results_dir ('' if none)."""
    frame = load_results(Path(results_dir))
    if frame.empty or "preset" not in frame:
        return ""
    frame = with_study_columns(frame)
    return "; ".join(f"preset {preset}: rulesets {', '.join(sorted(set(group['ruleset'])))}"
                     for preset, group in frame.groupby("preset"))


def build_from_frame(frame: pd.DataFrame, preset: str, ruleset: str | None, options: Options) -> list[Board]:
    """Boards from trial records already read (and given their `ruleset` and `study` columns)."""
    frame = frame[frame["preset"] == preset]
    if ruleset is not None:
        frame = frame[frame["ruleset"] == ruleset]
    if options.exclude_contended and "contended" in frame:
        frame = frame[frame["contended"] != True]  # noqa: E712  (NaN and None: not judged, kept)
    if frame.empty:
        return []
    frame = frame.assign(**{HARDWARE_KEY: frame[HARDWARE_KEY].fillna("unknown"),
                            HARDWARE_LABEL: frame[HARDWARE_LABEL].fillna("unknown hardware"),
                            SPEED_CALIBRATION: speed_calibrations(frame)})
    if "conditions" not in frame:  # a caller that merges rulesets (harness/commands/compare.py) judges them first
        frame = frame.assign(conditions=conditions(frame))
    if options.normalized:
        frame = normalized_frame(frame)
        if frame.empty:
            return []
    boards = []
    keys = [HARDWARE_KEY, SPEED_CALIBRATION, "ruleset", "conditions"]
    for (fingerprint, calibration, group_ruleset, group_conditions), group in frame.groupby(keys, sort=True):
        board = build_board(group, str(fingerprint), preset, str(group_ruleset), options)
        boards.append(dataclasses.replace(board, conditions=group_conditions, speed_calibration=calibration))
    return boards


def speed_calibrations(frame: pd.DataFrame) -> pd.Series:
    """Each trial's speed calibration; "" for its machine's first (records from before calibrations were kept
    included) and for trials without a measured budget."""
    return frame.get(SPEED_CALIBRATION, pd.Series("", index=frame.index)).fillna("").astype(str)


def machine_labels(frame: pd.DataFrame) -> list[str]:
    """'label [fingerprint]' of every machine (and speed calibration) whose trials are in `frame`, sorted."""
    keys = [machine_key(fingerprint, calibration)
            for fingerprint, calibration in zip(frame[HARDWARE_KEY].fillna("?"), speed_calibrations(frame))]
    labels = frame[HARDWARE_LABEL].fillna("unknown") + " [" + pd.Series(keys, index=frame.index) + "]"
    return sorted(set(labels))


def normalized_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials of every machine as one: times and budgets in reference steps. Trials without a reference
    step time (recorded before budgets were measured) cannot be normalized and are left out."""
    if "reference_step_time_s" not in frame:
        return frame.iloc[0:0]
    frame = frame[frame["reference_step_time_s"].notna()]
    machines = machine_labels(frame)
    step = frame["reference_step_time_s"].astype(float)
    return frame.assign(**{
        "time_to_target_s": frame.get(NORMALIZED_TIME, frame["time_to_target_s"].astype(float) / step),
        "budget_s": frame["budget_s"].astype(float) / step,
        HARDWARE_KEY: MERGED, HARDWARE_LABEL: "; ".join(machines), SPEED_CALIBRATION: ""})


def conditions(frame: pd.DataFrame) -> pd.Series:
    """'' for trials run under their ruleset's conditions; otherwise what differs (a step cap, a time
    budget other than the ruleset's x1.5 for self-tuning and x1 otherwise, self-tuning trials given
    hyperparameters), as `reproduce` runs its equal-steps and run-to-the-budget tables and its
    baselines at a paper's settings, or a smoke test caps steps. Boards never mix conditions.
    Records without a spec count as standard."""
    missing = pd.Series(np.nan, index=frame.index)
    self_tuning = frame["ruleset"] == "self"
    expected = np.where(self_tuning, SELF_TUNING_BUDGET_MULTIPLIER, 1.0)
    factor = frame.get("spec.budget_multiplier", missing).astype(float) / expected
    capped = frame.get("spec.max_steps", missing).notna()
    # json_normalize spreads spec.hyperparameters into one column per name (none when all are empty)
    set_by_hand = frame.filter(like="spec.hyperparameters.").notna().any(axis=1) & self_tuning
    parts = pd.DataFrame({"cap": np.where(capped, "step cap", ""),
                          "hyperparameters": np.where(set_by_hand, "hyperparameters set", ""),
                          "budget": [f"budget x{f:g} the ruleset's" if np.isfinite(f) and not np.isclose(f, 1.0)
                                     else "" for f in factor]}, index=frame.index)
    return parts.apply(lambda row: ", ".join(part for part in row if part), axis=1).astype(str)


def variant_map(trials: pd.DataFrame) -> dict[str, str | None]:
    """workload -> the base workload it is a variant of (None for a base), from the trial records."""
    column = trials["variant_of"] if "variant_of" in trials else pd.Series(None, index=trials.index, dtype=object)
    first = column.groupby(trials["workload"]).first()  # first non-null record per workload
    return {w: first.get(w) if isinstance(first.get(w), str) else None for w in trials["workload"].unique()}


def build_board(trials: pd.DataFrame, fingerprint: str, preset: str, ruleset: str, options: Options) -> Board:
    per_study = scoring.study_table(trials, "time_to_target_s")
    per_study_steps = scoring.study_table(trials, "steps_to_target")
    times, steps = scoring.median_over_studies(per_study), scoring.median_over_studies(per_study_steps)
    variant_of = variant_map(trials)
    budgets = trials.groupby("workload")["budget_s"].max().dropna().to_dict() if "budget_s" in trials else {}

    def score(table: pd.DataFrame) -> pd.Series:
        return scoring.benchmark_score(scoring.scored_times(table, variant_of, options.variant_rule), options.r_max,
                                       options.profile_points)

    statistics = {"score": (score, per_study), "steps_score": (score, per_study_steps)}
    scored = scoring.scored_times(times, variant_of, options.variant_rule)
    reference = options.reference
    if reference is not None and reference in times.index and set(scored.columns) <= set(budgets):
        def speedup(table: pd.DataFrame) -> pd.Series:
            return scoring.geometric_mean_speedup(scoring.scored_times(table, variant_of, options.variant_rule),
                                                  reference, budgets)
        statistics[f"speedup_vs_{reference}"] = (speedup, per_study)
    table = pd.DataFrame(index=times.index)
    for name, (statistic, values) in statistics.items():
        table[name] = statistic(scoring.median_over_studies(values))
        ci = scoring.bootstrap_ci(values, statistic, n_boot=options.n_boot, seed=options.seed)
        table[f"{name}_low"], table[f"{name}_high"] = ci["low"], ci["high"]
    table["reached"] = np.isfinite(scored).sum(axis=1)
    table["misses"] = (~np.isfinite(scored)).sum(axis=1)
    # a workload the submission has no trial on scores as a miss, but its cell says "not run" (NaN)
    table["not_run"] = times.reindex(columns=scored.columns).isna().sum(axis=1)
    shared = trials["contended"] == True if "contended" in trials else pd.Series(False, index=trials.index)  # noqa: E712
    table["contended"] = shared.groupby(trials["submission"]).sum().reindex(table.index).fillna(0).astype(int)
    table = table.join(times.add_suffix(" [ref steps]" if fingerprint == MERGED else " [s]"))
    table = table.join(steps.add_suffix(" [steps]"))
    table = table.sort_values(["score", "reached"], ascending=False)
    table.index.name = "submission"
    hardware = str(trials[HARDWARE_LABEL].iloc[0])
    return Board(hardware=hardware, fingerprint=fingerprint, preset=preset,
                 ruleset=ruleset, trials=trials, per_study=per_study, times=times, steps=steps,
                 variant_of=variant_of, budgets=budgets, table=table,
                 machines=tuple(hardware.split("; ")) if fingerprint == MERGED else ())
