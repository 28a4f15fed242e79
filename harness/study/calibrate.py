"""Target setting: `timetrial calibrate workload=W preset=P`, step-based, resumable and shareable.

The protocol (AlgoPerf's, scaled down: it used 200 trials and 20 reruns):

1. Tune: `points` quasi-random points of each baseline's search space (AdamW, NAdamW and SGD with
   heavy-ball momentum by default), each trained with seed 0 for exactly `step_hint` steps (no time
   budget) and evaluated on a fixed step grid (every step_hint / EVALS_PER_RUN steps).
2. Rerun the configuration with the best validation metric with seeds 1..`reruns`.
3. target = the median over the reruns of each rerun's best metric. Each baseline's best point is
   its published tuned configuration (`tuned:` in the targets file); the step at which each rerun
   first met the target is recorded.

Every trial counts steps, never seconds, so it gives the same metrics on any machine. That makes
calibration splittable and resumable: each finished trial is one line of a committed ledger,
`configs/targets/trials/<preset>/<workload>.jsonl` (its key, metrics on the step grid, the machine
that ran it, the code versions), and a run skips every trial the ledger already holds for the same
submission source and workload definition. `calibrate.shard=I/N` runs only every N-th missing
trial, so N machines can share the work and merge their ledgers through git. The target is written
(harness/core/targets.py) once every tuning trial and every rerun is in the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from harness.core import registry, targets
from harness.core.provenance import REPO_ROOT, git_commit, hardware
from harness.core.results import TrialRecord, append_jsonl, comparable, read_jsonl
from harness.core.runner import TrialSpec, resolve_device, workload_definition
from harness.core.submission import load_submission

BASELINES = ("adamw", "nadamw", "sgd_momentum")
MIN_POINTS, MIN_RERUNS = 20, 5
EVALS_PER_RUN = 20
TUNE_RULESET, RERUN_RULESET = "calibrate-tune", "calibrate-rerun"


class CalibrationIncomplete(RuntimeError):
    """Trials are still missing from the ledger (another shard's, or failed ones to retry)."""


@dataclasses.dataclass(frozen=True)
class LedgerLine:
    """One finished calibration trial, as the ledger keeps it."""

    key: str
    role: str                       # "tune" or "rerun"
    submission: str
    hyperparameters: dict[str, Any]
    seed: int
    status: str
    best_metric: float | None
    curve: list[tuple[int, float]]  # (step, target metric) on the step grid
    submission_source_hash: str
    workload_definition: str
    machine: dict[str, Any]         # fingerprint, label, threads of the machine that ran it
    git_commit: str
    date: str

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "LedgerLine":
        return cls(**{**row, "curve": [tuple(point) for point in row["curve"]]})


def repo_relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if REPO_ROOT in path.parents else str(path)


def ledger_file(preset: str, workload: str) -> Path:
    return targets.targets_dir() / "trials" / preset / f"{workload}.jsonl"


def read_ledger(preset: str, workload: str) -> list[LedgerLine]:
    return [LedgerLine.from_json(row) for row in read_jsonl(ledger_file(preset, workload))]


def first_met(curve: Sequence[tuple[int, float]], target: float, direction: str) -> int | None:
    """The first grid step whose metric meets `target` (None: never)."""
    met = (lambda v: v <= target) if direction == "min" else (lambda v: v >= target)
    return next((step for step, value in curve if met(value)), None)


def lines_at(ledger: Sequence[LedgerLine], submission: str, hyperparameters: Mapping[str, Any]) -> list[LedgerLine]:
    """The trials in `ledger` (one workload's, `read_ledger`) of `submission` at exactly this point: the
    tuning trial and any reruns; empty when it never ran the point."""
    wanted = comparable(hyperparameters)
    return [line for line in ledger if line.submission == submission and comparable(line.hyperparameters) == wanted]


def ledger_steps_to_target(ledger: Sequence[LedgerLine], submission: str, hyperparameters: Mapping[str, Any],
                           target: float, direction: str) -> list[int | None]:
    """For every trial of `lines_at` this point, the step at which it first met `target`."""
    return [first_met(line.curve, target, direction) for line in lines_at(ledger, submission, hyperparameters)]


def parse_shard(shard: str | None) -> tuple[int, int]:
    if shard in (None, "", "0/1"):
        return 0, 1
    try:
        index, count = (int(part) for part in str(shard).split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise ValueError(f"calibrate.shard={shard!r} is not valid; use I/N with 0 <= I < N, e.g. 0/2 and 1/2")
    return index, count


def step_grid(step_hint: int) -> int:
    return max(1, step_hint // EVALS_PER_RUN)


def trial_spec(workload: str, preset: str, step_hint: int, submission: str, hyperparameters: Mapping[str, Any],
               seed: int, ruleset: str) -> TrialSpec:
    """One calibration trial: exactly `step_hint` steps on the fixed grid, no clock budget, no stop at a target."""
    return TrialSpec(workload=workload, submission=submission, preset=preset, hyperparameters=dict(hyperparameters),
                     seed=seed, ruleset=ruleset, stop_at_target=False, max_steps=step_hint,
                     eval_period_steps=step_grid(step_hint), step_based=True)


def tuning_specs(workload: str, preset: str, step_hint: int, baselines: Sequence[str], points: int,
                 search_seed: int) -> list[TrialSpec]:
    return [trial_spec(workload, preset, step_hint, name, point, 0, TUNE_RULESET)
            for name in baselines for point in load_submission(name).search_space.sample(points, search_seed)]


def calibrate(workload: str, preset: str, run_specs: Callable[[list[TrialSpec]], list[TrialRecord]],
              results_dir: str | Path, baselines: Sequence[str] = BASELINES, points: int = MIN_POINTS,
              reruns: int = MIN_RERUNS, search_seed: int = 0, shard: str | None = None, note: str = "",
              device: str = "cpu", data_dir: str | None = None, log: Callable[[str], None] = print,
              batch: int = 4) -> dict[str, Any]:
    """Run the missing trials of the protocol (this shard's), then set and write the target.

    `run_specs` runs trials and returns their records (the CLI passes the configured launcher), `batch`
    at a time; each batch's lines reach the ledger before the next starts.
    Raises CalibrationIncomplete, naming what is missing, while the ledger lacks trials."""
    if points < 1 or reruns < 1:
        raise ValueError(f"calibrate needs points >= 1 and reruns >= 1, got points={points}, reruns={reruns}")
    index, count = parse_shard(shard)
    current = registry.make_workload(workload, preset, data_dir, device)
    definition = workload_definition(current)
    sources = {name: load_submission(name).source_hash() for name in baselines}
    tuning = tuning_specs(workload, preset, current.step_hint, baselines, points, search_seed)

    def finished() -> dict[str, LedgerLine]:
        """Ledger lines of this workload definition and these submission sources (others are stale)."""
        return {line.key: line for line in read_ledger(preset, workload) if line.workload_definition == definition
                and line.submission_source_hash == sources.get(line.submission)}

    def run_missing(specs: list[TrialSpec], role: str) -> list[LedgerLine]:
        done = finished()
        missing = [spec for spec in specs if spec.key() not in done]
        mine = missing[index::count]
        log(f"calibrate {workload} ({preset}) {role}: {len(specs) - len(missing)} of {len(specs)} trials in the ledger; "
            f"running {len(mine)}" + (f" (shard {index}/{count})" if count > 1 else ""))
        ledger_file(preset, workload).parent.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(mine), batch):  # the ledger grows batch by batch: an interrupted run keeps them
            chunk = mine[start:start + batch]
            records = run_specs(chunk)
            append_jsonl(ledger_file(preset, workload), [
                dataclasses.asdict(ledger_line(spec, record, role, results_dir, definition))
                for spec, record in zip(chunk, records) if record.status in ("budget", "reached", "diverged")])
            log(f"calibrate {workload} ({preset}) {role}: {start + len(chunk)} of {len(mine)} run")
        done = finished()
        still = [spec for spec in specs if spec.key() not in done]
        if still:
            raise CalibrationIncomplete(
                f"calibrate {workload} ({preset}): {len(still)} {role} trials are not in {ledger_file(preset, workload)} yet "
                "(another shard's, or failed: see the results tree); rerun the same command to continue")
        return [done[spec.key()] for spec in specs]

    tuned = run_missing(tuning, "tune")
    pick = min if current.target_direction == "min" else max
    finite = [line for line in tuned if line.best_metric is not None and line.status != "diverged"]
    if not finite:
        raise RuntimeError(f"calibrate {workload} ({preset}): every tuning trial diverged")
    best = pick(finite, key=lambda line: line.best_metric)
    rerun_specs = [trial_spec(workload, preset, current.step_hint, best.submission, best.hyperparameters, seed,
                              RERUN_RULESET) for seed in range(1, reruns + 1)]
    rerun_lines = run_missing(rerun_specs, "rerun")
    if any(line.best_metric is None or line.status == "diverged" for line in rerun_lines):
        raise RuntimeError(f"calibrate {workload} ({preset}): a rerun of the best point diverged; "
                           f"the point is not stable enough to set a target: {best.hyperparameters}")
    target = statistics.median(line.best_metric for line in rerun_lines)
    hits = [first_met(line.curve, target, current.target_direction) for line in rerun_lines]
    tuned_points = {name: pick((l for l in finite if l.submission == name), key=lambda l: l.best_metric).hyperparameters
                    for name in baselines if any(l.submission == name for l in finite)}
    lines = tuned + rerun_lines
    dates = sorted(line.date for line in lines)
    machines = Counter(f"{line.machine['label']} [{line.machine['fingerprint']}]" for line in lines)
    entry = {
        "target_value": float(target),
        "step_hint": current.step_hint,
        "tuned": tuned_points,
        "provenance": {
            "protocol": f"{points} quasi-random points (search seed {search_seed}) x {list(baselines)}, each "
                        f"{current.step_hint} steps, evaluated every {step_grid(current.step_hint)} steps; best point "
                        f"rerun with seeds 1..{reruns}; target = median of the reruns' best {current.target_metric}",
            "trials": len(lines),
            "ledger": repo_relative(ledger_file(preset, workload)),
            "first_trial": dates[0], "last_trial": dates[-1],
            "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "machines": dict(machines),
            "note": note,
            "best_submission": best.submission,
            "best_hyperparameters": best.hyperparameters,
            "tuned_best_metrics": {name: pick(l.best_metric for l in finite if l.submission == name)
                                   for name in tuned_points},
            "diverged_points": sum(line.status == "diverged" for line in tuned),
            "rerun_best_metrics": [line.best_metric for line in rerun_lines],
            "rerun_steps_to_target": hits,
            "rerun_fraction_of_step_hint": [None if h is None else round(h / current.step_hint, 3) for h in hits],
        },
    }
    path = targets.write_entry(preset, workload, entry)
    log(f"wrote {path}")
    return entry


def ledger_line(spec: TrialSpec, record: TrialRecord, role: str, results_dir: str | Path,
                definition: str) -> LedgerLine:
    evals = read_jsonl(spec.trial_dir(Path(results_dir)) / "evals.jsonl")
    metric = record.target_metric
    provenance = record.provenance or {}
    info = provenance.get("hardware") or hardware(resolve_device("cpu"))
    best = record.best_metric
    return LedgerLine(
        key=spec.key(), role=role, submission=spec.submission, hyperparameters=dict(spec.hyperparameters),
        seed=spec.seed, status=str(record.status),
        best_metric=None if best is None or best != best else float(best),  # NaN -> None
        curve=[(int(row["step"]), float(row[metric])) for row in evals],
        submission_source_hash=provenance.get("submission_source_hash", ""),
        workload_definition=definition,
        machine={k: info.get(k) for k in ("fingerprint", "label", "torch_threads")},
        git_commit=provenance.get("git_commit", "unknown"),
        date=provenance.get("timestamp", ""))
