"""Running many trials: the workload suite and the in-process launcher."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from omegaconf import OmegaConf
from tqdm.auto import tqdm

from harness.core import registry, results
from harness.core.provenance import hardware
from harness.core.runner import TrialSpec, apply_budget, resolve_device, run_trial, spec_record, stale_reason
from harness.core.submission import load_submission
from harness.study import calibrate, launchers
from harness.study.config import UsageError, trial_options


def suite(workloads: str | Sequence[str], preset: str, data_dir: str | None,
          named: Mapping[str, Any] | None = None) -> list[str]:
    """A list of names, a suite named in `named` (configs: `suites`), or `all`: every workload
    (variants included) that has the preset and whose data is present."""
    if isinstance(workloads, str) and workloads != "all":
        if workloads not in (named or {}):
            raise registry.UnknownWorkloadError(
                f"suite={workloads!r} is neither a suite nor a list; valid suites: {sorted(named or {}) + ['all']}, "
                f"or a list in brackets: suite=[{workloads}]")
        return suite(named[workloads], preset, data_dir, named)
    if workloads != "all":
        return [registry.workload_class(name).name for name in workloads]
    names = []
    for name, cls in sorted(registry.workload_classes().items()):
        if preset in cls.sizes and cls(preset=preset, data_dir=data_dir).data_available():
            names.append(name)
    return names


@dataclasses.dataclass(frozen=True)
class TimeEstimate:
    """Trial time of a list of specs on this machine (evaluation not included)."""

    expected_s: tuple[float, ...]  # per trial: its steps to target in the calibration ledger x this machine's step time
    bound_s: float                 # every trial to its budget
    from_ledger: int               # trials whose point the ledger ran; the others are expected to use their whole budget

    def describe(self, workers: int) -> str:
        return (f"about {sum(self.expected_s) / 60 / workers:.1f} min on {workers} worker(s) (at most "
                f"{self.bound_s / 60 / workers:.1f}) plus evaluation; {self.from_ledger} trials expected from the "
                "calibration ledger's steps to target x this machine's step times, the rest at their budgets")


def estimate(specs: Sequence[TrialSpec], cfg) -> TimeEstimate:
    """This machine's budgets and step times (measured where missing), and where the calibration ledger
    ran a trial's exact point, the mean of its trials' times to target (a miss costs the whole budget)."""
    device = resolve_device(cfg.device)
    workloads: dict[tuple[str, str], Any] = {}
    expected: list[float] = []
    bound = 0.0
    from_ledger = 0
    for spec in specs:
        if (spec.workload, spec.preset) not in workloads:
            workload = registry.make_workload(spec.workload, spec.preset, cfg.data_dir, str(device))
            timing = apply_budget(workload, dataclasses.replace(spec, step_based=False, budget_multiplier=1.0),
                                  cfg.data_dir, device)
            ledger = calibrate.read_ledger(spec.preset, spec.workload)  # once per workload, not per trial
            workloads[spec.workload, spec.preset] = (workload, timing.get("reference_step_time_s"), ledger)
        workload, step_time, ledger = workloads[spec.workload, spec.preset]
        budget = workload.max_allowed_runtime_sec * spec.budget_multiplier
        bound += budget
        hits = calibrate.ledger_steps_to_target(ledger, spec.submission_label(), spec.hyperparameters,
                                                workload.target_value, workload.target_direction) if step_time else []
        if hits and spec.stop_at_target:
            from_ledger += 1
            expected.append(sum(budget if h is None else min(budget, h * step_time) for h in hits) / len(hits))
        else:
            expected.append(budget)
    return TimeEstimate(tuple(expected), bound, from_ledger)


def longest_first(specs: Sequence[TrialSpec], estimated: TimeEstimate) -> list[TrialSpec]:
    """The specs in decreasing expected time: a pool of workers then ends with short trials, not one long one."""
    order = sorted(range(len(specs)), key=lambda i: -estimated.expected_s[i])
    return [specs[i] for i in order]


def run_local(specs: Iterable[TrialSpec], results_dir: Path | str, progress: bool = True,
              **options: Any) -> list[results.TrialRecord]:
    """Run trials one after another in this process; a failing trial is recorded and skipped past."""
    specs = list(specs)
    records: list[results.TrialRecord] = []
    counts = {"done": 0, "skipped": 0, "diverged": 0, "failed": 0}
    bar = None
    if progress:
        bar = tqdm(total=len(specs), unit="trial", desc="sweep")
    for spec in specs:
        record = run_trial(spec, results_dir, progress=progress, **options)
        records.append(record)
        key = "skipped" if record.skipped else record.status if record.status in counts else "done"
        counts[key] += 1
        if bar is not None:
            bar.set_postfix(counts)
            bar.update()
    if bar is not None:
        bar.close()
    return records


def launch(specs: Iterable[TrialSpec], cfg) -> list[results.TrialRecord]:
    """Run trials with the configured launcher (`cfg.launcher.name`: debug | local | slurm); the
    records come back in the order of `specs`.

    Idempotent: finished trials are skipped (`force=true` deletes and reruns them), trials whose job
    is still queued or running are left to it, failed or missing ones are (re)submitted; a trial
    interrupted after a checkpoint resumes from it.
    """
    specs = list(specs)
    launcher = OmegaConf.to_container(cfg.launcher, resolve=True)
    # debug runs the trials in this process, so its fingerprint is theirs; local and slurm jobs run
    # in their own processes (their torch threads, a cluster's nodes), checked only against each other
    debug = launcher["name"] == "debug"
    here = hardware(resolve_device(cfg.device), launchers.ranks_per_trial(specs))["fingerprint"] if debug else None
    if debug:
        return warn_foreign_hardware(run_local(specs, cfg.results_dir, **trial_options(cfg)), here)
    results_dir = Path(cfg.results_dir)
    records: dict[str, results.TrialRecord] = {}
    todo = []
    for spec in specs:
        trial_dir = spec.trial_dir(results_dir)
        existing = results.read_result(trial_dir)
        if cfg.force and trial_dir.exists():
            shutil.rmtree(trial_dir)
        elif existing is not None and existing.status in results.FINISHED \
                and stale_reason(existing, spec, load_submission(spec.submission)) is None:
            records[spec.key()] = dataclasses.replace(existing, skipped=True)
            continue
        job = launchers.job_record_path(results_dir, spec)
        if job.exists() and launchers.job_active(json.loads(job.read_text())):
            records[spec.key()] = spec_record(spec, results.TrialStatus.QUEUED, skipped=True)
            continue
        todo.append(spec)
    # Jobs resume from checkpoints themselves; `force` was applied above, not in the job.
    options = {**trial_options(cfg), "force": False, "progress": False}
    if todo:
        if launcher["name"] == "slurm":
            check_slurm()
        launched = launchers.launch_jobs(todo, launcher, results_dir, options, cfg.progress)
        records.update({spec.key(): record for spec, record in zip(todo, launched)})
    return warn_foreign_hardware([records[spec.key()] for spec in specs], here)


SLURM_HELP = ("start the single-node cluster with `scripts/slurm_localhost.sh up` and export the SLURM_CONF it "
              "prints, or run the trials here with launcher=local")


def check_slurm() -> None:
    """launcher=slurm needs sbatch and a controller that answers; say so in one line, with the way out."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise UsageError(f"launcher=slurm, but SLURM is not installed here (no sbatch/sinfo on PATH); {SLURM_HELP}")
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise UsageError(f"launcher=slurm, but the SLURM controller did not answer within 20 s; {SLURM_HELP}") from None
    if answer.returncode != 0:
        reason = (answer.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise UsageError(f"launcher=slurm, but SLURM cannot be reached ({reason}); {SLURM_HELP}")


def foreign_hardware(records: Sequence[results.TrialRecord], here: str | None) -> str:
    """Why reused trials are not this machine's measurements ('' when they are): finished trials
    are reused whatever hardware ran them (a results tree is shared, copied and resumed), so a sweep
    resumed on another machine mixes two clocks. `here`: the fingerprint of the process that runs
    the trials, or None when jobs run elsewhere, whose records are then only checked against each other."""
    reused = [r for r in records if r.skipped and r.provenance is not None]
    fingerprints = [r.provenance["hardware"].get("fingerprint", "unknown") for r in reused]
    distinct = sorted(set(fingerprints))
    if here is None:
        return "" if len(distinct) < 2 else (
            f"these {len(records)} trials reuse finished results from {len(distinct)} machines "
            f"({', '.join(distinct)}): their times are not comparable; force=true reruns them")
    others = [f for f in distinct if f != here]
    if not others:
        return ""
    count = sum(f in others for f in fingerprints)
    return (f"{count} of these {len(records)} trials are finished results from other hardware ({', '.join(others)}), "
            "reused as they are: their times and budgets are that machine's; force=true reruns them here")


def warn_foreign_hardware(records: list[results.TrialRecord], here: str | None) -> list[results.TrialRecord]:
    if message := foreign_hardware(records, here):
        warnings.warn(message, stacklevel=3)
    return records
