"""One trial: train a submission on a workload against the clock, as AlgoPerf does.

Counted on the clock: `data_selection`, `update_params` and `prepare_for_eval` (compilation and
first-step warm-up included). Not counted: model and optimizer initialisation, evaluation,
logging, checkpointing. The device is synchronised before every clock reading on GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
import warnings
from inspect import signature
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from harness.core import checkpoint, contention, distributed, machine, precision, prng, registry, results, watchdog
from harness.core.contention import ClockProbe, CpuMeter, assess
from harness.core.loggers import NullLogger
from harness.core.presets import apply_threads, preset_policy
from harness.core.provenance import hardware, provenance
from harness.core.results import TrialStatus
from harness.core.spec import (TRIAL_DEVICE_ENV, FrameworkUnavailableError, Hyperparameters, MetricsLogger,
                               TrainingCompleteError, UnsupportedWorkloadError, Workload)
from harness.core.submission import Submission, load_submission
from harness.core.targets import tuned_point


class TrialInterrupted(KeyboardInterrupt):
    """Ctrl-C during a trial, with where it stopped and how to go on (it stays a KeyboardInterrupt)."""


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """Everything that defines one trial; its hash names the trial's directory."""

    workload: str
    submission: str
    preset: str = "cpu"
    seed: int = 0
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    framework: str = "pytorch"
    #: where the trial belongs: a tuning ruleset ("external", "self"; "tuned" for the baselines' reference
    #: rows) with its study and trial numbers, or what ran it ("run", "bench", "calibrate-tune", ...)
    ruleset: str = "run"
    study: int | None = None
    trial: int | None = None
    budget_multiplier: float = 1.0
    stop_at_target: bool = True
    max_steps: int | None = None
    eval_period_s: float | None = None
    eval_period_steps: int | None = None
    #: True: train exactly `max_steps` steps, evaluate on the step grid only, no time budget; the metrics
    #: are then the same on any machine (target setting, reference step-time runs)
    step_based: bool = False
    #: data-parallel ranks on one node, each on its slice of every global batch (harness/core/distributed.py)
    nproc_per_node: int = 1
    #: overrides of the workload's precision policy ("fp32", "bf16") and compilation; None keeps the
    #: workload's own (harness/core/precision.py)
    precision: str | None = None
    compile: bool | None = None

    def __post_init__(self) -> None:
        if self.step_based and (self.max_steps is None or self.eval_period_steps is None):
            raise ValueError("a step-based trial needs max_steps and eval_period_steps")
        if isinstance(self.nproc_per_node, bool) or not isinstance(self.nproc_per_node, int) or self.nproc_per_node < 1:
            raise ValueError(f"nproc_per_node={self.nproc_per_node!r} is not valid; give a whole number of ranks >= 1")
        if self.nproc_per_node > 1 and self.framework != "pytorch":
            raise ValueError(f"nproc_per_node={self.nproc_per_node}: data-parallel trials are PyTorch-only for now; "
                             f"framework={self.framework} trains in one process (nproc_per_node=1)")

    @property
    def tag(self) -> str:
        """The placement as one name ('external/study2/trial3', 'self/study1', 'run'): the trial folder's prefix."""
        parts = [self.ruleset] + ([f"study{self.study}"] if self.study is not None else []) \
            + ([f"trial{self.trial}"] if self.trial is not None else [])
        return "/".join(parts)

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        fields["hyperparameters"] = dict(sorted(self.hyperparameters.items()))
        # unset, these keep the keys of trials recorded before the fields existed
        for name, unset in (("step_based", False), ("nproc_per_node", 1), ("precision", None),
                            ("compile", None)):
            if fields[name] == unset and type(fields[name]) is type(unset):
                del fields[name]
        for name in ("ruleset", "study", "trial"):  # hashed as the tag they once were: keys stay the same
            del fields[name]
        fields["tag"] = self.tag
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:10]

    def submission_label(self) -> str:
        return Path(self.submission).stem if ("/" in self.submission or self.submission.endswith(".py")) else self.submission

    def trial_dir(self, results_dir: Path) -> Path:
        return (Path(results_dir) / "trials" / self.workload / self.submission_label() / self.preset
                / f"{self.tag}-seed{self.seed}-{self.key()}")


class Clock:
    """Wall clock that waits for queued device work (CUDA kernels, JAX's asynchronous dispatch)
    before reading the time."""

    def __init__(self, synchronize: Callable[[Any], None], time_fn: Callable[[], float] = time.perf_counter) -> None:
        self.synchronize = synchronize
        self.time_fn = time_fn

    def now(self, outputs: Any = None) -> float:
        self.synchronize(outputs)
        return self.time_fn()


class SubmissionWorkloadView:
    """The workload as a submission sees it: model, loss and sizes; no validation data or targets."""

    VISIBLE = frozenset({
        "name", "family", "algoperf_name", "preset", "device", "loss_type", "step_hint",
        "max_allowed_runtime_sec", "eval_period_time_sec", "param_shapes", "model_params_types",
        "model_fn", "loss_fn", "metrics_logger", "init_model_fn",
        # AlgoPerf's spec.Workload attributes (its validation/test targets stay hidden)
        "target_metric_name", "num_train_examples", "num_eval_train_examples", "num_validation_examples",
        "num_test_examples", "eval_batch_size", "is_output_params",
    })

    def __init__(self, workload: Workload) -> None:
        object.__setattr__(self, "_workload", workload)

    def __getattr__(self, name: str) -> Any:
        if name in self.VISIBLE:
            value = getattr(self._workload, name)
            # Kept on the view: submissions read model_fn, loss_fn, ... every step, and none of
            # these change during a trial (the runner sets metrics_logger before making the view).
            object.__setattr__(self, name, value)
            return value
        raise AttributeError(
            f"submissions cannot read workload.{name}; visible: {sorted(self.VISIBLE)}"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("submissions cannot modify the workload")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def algoperf_eval_result(metrics: Mapping[str, float], workload: Workload, submission_time_s: float,
                         eval_time_s: float, total_duration_s: float) -> dict[str, float]:
    """One evaluation as AlgoPerf's `eval_results` entries carry it: `train/loss`, `validation/accuracy`, ...
    (timetrial's `<split>_<metric>` keys), the validation size, and the clock's totals."""
    result = {key.replace("_", "/", 1): value for key, value in metrics.items()}
    result["validation/num_examples"] = workload.num_validation_examples
    result.update(score=submission_time_s, total_duration=total_duration_s,
                  accumulated_submission_time=submission_time_s, accumulated_eval_time=eval_time_s,
                  accumulated_logging_time=0.0)
    return result


def resolve_batch_size(submission: Submission, workload: Workload) -> int:
    """The submission's `get_batch_size` for the workload's AlgoPerf name (or its own name),
    falling back to the workload's default when it raises ValueError or KeyError, or is absent."""
    default = workload.size.batch_size
    if submission.get_batch_size is None:
        return default
    try:
        batch_size = int(submission.get_batch_size(workload.algoperf_name or workload.name))
    except (ValueError, KeyError) as err:  # AlgoPerf's dev algorithms look names up in a dict
        warnings.warn(f"{submission.name}.get_batch_size: {err}; using {workload.name}'s default batch size {default}")
        return default
    cap = workload.size.max_batch_size
    if cap is not None and batch_size > cap:
        warnings.warn(f"{submission.name} asks for batch size {batch_size}; {workload.name} "
                      f"preset {workload.preset} allows at most {cap}; using {cap}")
        return cap
    return batch_size


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_trial(
    spec: TrialSpec,
    results_dir: Path | str = "runs",
    *,
    data_dir: str | None = None,
    device: str = "auto",
    force: bool = False,
    logger=None,
    progress: bool = False,
    clock_fn: Callable[[], float] = time.perf_counter,
    submission: Submission | None = None,
    checkpoint_every_evals: int = 0,
) -> results.TrialRecord:
    """Run one trial and return its result record (also written to `<trial_dir>/result.json`).

    A finished trial is skipped (its record returned, marked `skipped`) unless `force`. The trial
    never raises for a submission's failure: errors become `status="failed"` with the traceback, NaN/inf losses
    `status="diverged"`. With `checkpoint_every_evals=N` the trial checkpoints at every Nth eval
    and a later call resumes from that checkpoint (unless `force`); it is deleted once a result is written.
    """
    trial_dir = spec.trial_dir(Path(results_dir))
    existing = results.read_result(trial_dir)
    if existing is not None and existing.status in results.FINISHED and not force:
        submission = submission or load_submission(spec.submission)
        changed = stale_reason(existing, spec, submission)
        if changed is None:
            return dataclasses.replace(existing, skipped=True)
        print(f"{spec.workload}/{spec.submission_label()}: rerunning the finished trial in {trial_dir}: {changed}",
              file=sys.stderr, flush=True)
        force = True
    world = distributed.World.of(spec.nproc_per_node)
    if world is None:  # N ranks wanted and none started yet: start them here, each running this function
        return _launch_ranks(spec, results_dir, submission, dict(
            data_dir=data_dir, device=device, force=force, logger=logger, progress=progress, clock_fn=clock_fn,
            checkpoint_every_evals=checkpoint_every_evals))
    resume = (trial_dir / checkpoint.CHECKPOINT_FILE).exists() and not force
    if world.writes:  # rank 0 alone touches the trial's directory; the others wait for it in `world.join`
        if trial_dir.exists() and not resume:
            shutil.rmtree(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
    logger = (logger if world.writes else None) or NullLogger()
    torch_device = world.rank_device(resolve_device(device))
    os.environ[TRIAL_DEVICE_ENV] = str(torch_device)
    threads_before = torch.get_num_threads()
    record = spec_record(spec, TrialStatus.FAILED)
    started = time.time()
    try:
        record.torch_threads = apply_threads(spec.preset)
        world.join(torch_device)
        submission = submission or load_submission(spec.submission)
        record.provenance = provenance(torch_device, spec.seed, submission.source_hash(), spec.framework)
        if world.distributed:  # how it ran, at the top for tables; N ranks are other hardware than one process
            record.provenance.update(hardware=hardware(torch_device, world.size), distributed=world.describe())
            record = dataclasses.replace(record, **world.describe())
        try:
            workload = registry.make_workload(spec.workload, spec.preset, data_dir, str(torch_device), spec.framework)
        except FrameworkUnavailableError as err:
            raise UnsupportedWorkloadError(str(err)) from err
        precision.apply(workload, precision.resolve(workload, spec.precision, spec.compile))
        with world.rank0_first():  # rank 0 measures this machine's reference step time; the others read its cache
            budget = apply_budget(workload, spec, data_dir, torch_device, clock_fn)
        record = dataclasses.replace(record, **workload.policy.record(), **budget, **workload_info(workload, spec))
        reason = submission.unsupported_reason(workload.name)
        if reason is None and spec.framework != submission.framework:
            raise ValueError(f"submission {submission.name!r} is written for {submission.framework}, "
                             f"not framework={spec.framework}; run it with framework={submission.framework}")
        hyperparameters = {**submission.default_hyperparameters(), **spec.hyperparameters}
        record.hyperparameters = hyperparameters
        if reason is not None:
            raise UnsupportedWorkloadError(reason)
        logger.start(f"{spec.workload}/{record.submission}/{trial_dir.name}",
                     {"hyperparameters": hyperparameters, "spec": record.spec, "provenance": record.provenance})
        # AlgoPerf hands a submission without hyperparameters (self-tuning) None
        passed = None if not hyperparameters and submission.api == "algoperf" else Hyperparameters(hyperparameters)
        # a CPU trial timed against this machine's reference step time checks that the machine still runs at its speed
        probe = (ClockProbe(record.reference_step_time.get("probe_s"))
                 if record.reference_step_time and torch_device.type == "cpu" else None)
        record = dataclasses.replace(record, **_train(spec, submission, workload, passed, trial_dir,
                                                      Clock(workload.synchronize, world.slowest(clock_fn)), logger,
                                                      progress and world.writes, world, checkpoint_every_evals, probe))
        if probe is not None and probe.moved():
            print(f"{spec.workload}/{spec.submission_label()}: marked contended: this machine ran its clock probe at "
                  f"{record.clock_ratio:.2f}x the time it took beside the reference step time, so the budget no longer "
                  f"fits it (`timetrial calibrate-speed` remeasures)", file=sys.stderr, flush=True)
        if record.reference_step_time_s and record.time_to_target_s is not None:
            record.time_to_target_reference_steps = record.time_to_target_s / record.reference_step_time_s
    except UnsupportedWorkloadError as err:
        record.status, record.error = TrialStatus.UNSUPPORTED, str(err)
    except Exception as err:  # noqa: BLE001  (one trial's crash must never take down a sweep)
        record.status, record.error = TrialStatus.FAILED, f"{type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()
    finally:
        world.leave()
        torch.set_num_threads(threads_before)
    record.wall_time_s = time.time() - started
    if world.writes:
        results.write_result(trial_dir, record)
        checkpoint.delete(trial_dir)
    logger.finish(record)
    return record


def _launch_ranks(spec: TrialSpec, results_dir: Path | str, submission: Submission | None,
                  options: dict[str, Any]) -> results.TrialRecord:
    """The trial as `spec.nproc_per_node` local processes (harness.core.distributed.launch), each loading
    the submission `spec.submission` names."""
    if submission is not None:
        raise ValueError("a data-parallel trial's ranks load the submission spec.submission names; "
                         "run_trial(submission=...) works with nproc_per_node=1 only")
    try:
        return distributed.launch(spec, run_trial, results_dir, options, lambda error, rank_errors: spec_record(
            spec, TrialStatus.FAILED, error=error, rank_errors=rank_errors))
    except KeyboardInterrupt as stop:
        raise TrialInterrupted(str(stop)) from None


def spec_record(spec: TrialSpec, status: TrialStatus, **fields: Any) -> results.TrialRecord:
    """The record of a trial of `spec` before its outcome (plus `fields`): what run_trial starts from,
    and what a sweep returns for a trial that a job runs."""
    return results.TrialRecord(
        workload=spec.workload, submission=spec.submission_label(), submission_ref=spec.submission,
        framework=spec.framework, preset=spec.preset, seed=spec.seed, tag=spec.tag,
        ruleset=spec.ruleset, study=spec.study, trial=spec.trial, trial_key=spec.key(), spec=dataclasses.asdict(spec),
        status=status, timing_version=TIMING_VERSION, **fields)


#: bumped when the runner changes what the clock counts, so trials timed the old way are not reused
TIMING_VERSION = 2


def stale_reason(record: results.TrialRecord, spec: TrialSpec, submission: Submission) -> str | None:
    """Why a finished trial no longer answers `spec` (None: it does). A trial is the spec plus what it
    resolves to: the submission's source, the hyperparameters after defaults, and the clock's rules."""
    recorded_source = (record.provenance or {}).get("submission_source_hash")
    if recorded_source is not None and recorded_source != submission.source_hash():
        return "the submission's source changed since"
    resolved = {**submission.default_hyperparameters(), **spec.hyperparameters}
    recorded = record.hyperparameters
    if recorded is not None and results.comparable(recorded) != results.comparable(resolved):
        return f"its hyperparameters resolve differently now ({recorded} -> {resolved})"
    timed = record.timing_version or 1  # records without the field were timed under version 1
    if timed != TIMING_VERSION:
        return f"it was timed under the runner's timing version {timed}, now {TIMING_VERSION}"
    # what the trial was measured against: a committed target (calibrate writes them) or a new step_hint
    # answers another question; records from before a field was recorded are not judged on it
    workload = registry.make_workload(spec.workload, spec.preset, framework=spec.framework)  # loads no data
    for field, now in (("target_value", workload.target_value), ("step_hint", workload.step_hint),
                       ("workload_definition", workload_definition(workload))):
        recorded = getattr(record, field)
        if recorded is not None and recorded != now:
            return f"its {field} changed since ({recorded} -> {now})"
    return None


def apply_budget(workload: Workload, spec: TrialSpec, data_dir: str | None, device: torch.device,
                 clock_fn: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """Give the workload this machine's time budget (presets that measure it); returns the TrialRecord
    fields it sets.

    A step-based trial has no time budget (its submissions see an infinite one); a `tiny` trial keeps
    the workload's fixed budget."""
    if spec.step_based:
        workload.size = dataclasses.replace(workload.size, max_runtime_s=math.inf)
        return {}
    if not preset_policy(spec.preset).measured_budget:
        return {}
    measured = reference_step_time(workload, data_dir, device, clock_fn=clock_fn)
    workload.size = dataclasses.replace(workload.size, max_runtime_s=measured.budget_s(workload.step_hint))
    return {"reference_step_time_s": measured.step_time_s, "reference_step_time": dataclasses.asdict(measured)}


def _digest(described: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:12]


def workload_definition(workload: Workload) -> str:
    """A hash of what a step-based trial's metrics depend on besides the submission: the workload's
    class, `version` and its size at the preset (target excluded). Bump `Workload.version` when the
    model or data code changes what a trial computes. The precision policy counts where it is not plain
    fp32 (CUDA, bf16, compiled), so the definitions of fp32 CPU presets stay those recorded before policies."""
    size = dataclasses.replace(workload.size, target_value=0.0, test_target_value=None, max_runtime_s=None)
    described = {"class": f"{type(workload).__module__}.{type(workload).__qualname__}",
                 "version": workload.version, "size": repr(size)}
    policy = precision.default_policy(workload)
    if policy != precision.PrecisionPolicy():
        described["precision"] = policy.record()
    return _digest(described)


def reference_definition(workload: Workload, hyperparameters: Mapping[str, Any]) -> str:
    """What a reference step time depends on: the workload's definition at the preset and the point."""
    return _digest({"workload": workload_definition(workload), "hyperparameters": dict(hyperparameters)})


def reference_step_time(workload: Workload, data_dir: str | None, device: torch.device, remeasure: bool = False,
                        clock_fn: Callable[[], float] = time.perf_counter) -> machine.StepTime:
    """This machine's reference step time for the workload at its preset: cached per hardware
    fingerprint, measured in a short step-based NAdamW run on `clock_fn` when missing from the current speed
    calibration (or `remeasure`)."""
    apply_threads(workload.preset)  # the fingerprint names the preset's thread count
    point = tuned_point(workload.name, workload.preset, machine.REFERENCE_SUBMISSION) or {}
    # the reference is the PyTorch NAdamW whatever the trial's framework, so it is keyed by the PyTorch
    # workload's definition: one measurement per workload and preset, not one per framework in turn (keyed by
    # the JAX class, the PyTorch and JAX trials of one board kept replacing each other's measurement)
    reference_workload = registry.make_workload(workload.name, workload.preset, data_dir, str(device))
    definition = reference_definition(reference_workload, point)
    info = hardware(device)
    if not remeasure:
        cached = machine.cached_step_time(info["fingerprint"], workload.name, workload.preset, definition)
        if cached is not None:
            return cached
    print(f"measuring this machine's reference step time for {workload.name} ({workload.preset}) with "
          f"{machine.REFERENCE_SUBMISSION} ({info['label']}) ...", file=sys.stderr, flush=True)
    steps = machine.MEASURED_STEPS
    for _ in range(2):  # a first short run tells how many steps fill MIN_MEASURED_S
        spec = TrialSpec(workload=workload.name, submission=machine.REFERENCE_SUBMISSION, preset=workload.preset,
                         hyperparameters=point, ruleset="speed", stop_at_target=False,
                         max_steps=machine.WARMUP_STEPS + steps, eval_period_steps=10**9, step_based=True)
        with tempfile.TemporaryDirectory(prefix="timetrial-speed-") as scratch:
            record = run_trial(spec, scratch, data_dir=data_dir, device=str(device), clock_fn=clock_fn)
        # a diverged loss still timed its steps (the reference may diverge at its untuned defaults)
        if record.status not in ("budget", "reached", "diverged") or not record.median_step_time_s:
            raise RuntimeError(f"measuring the reference step time of {workload.name} ({workload.preset}) failed: "
                               f"{record.error or record.status}")
        wanted = min(workload.step_hint, math.ceil(machine.MIN_MEASURED_S / record.median_step_time_s))
        if wanted <= steps:
            break
        steps = wanted
    measured = machine.StepTime(
        workload=workload.name, preset=workload.preset, step_time_s=record.median_step_time_s,
        definition=definition, reference=machine.REFERENCE_SUBMISSION, hyperparameters=point,
        steps=steps, contended=record.contended, cpu_share=record.cpu_share,
        measured_at=machine.now_iso(), hardware={k: info[k] for k in ("label", "cpu", "cpu_kind", "torch_threads", "gpu")},
        probe_s=statistics.median(contention.clock_probe_s() for _ in range(contention.REFERENCE_PROBES)),
        speed_calibration=machine.current_speed_calibration(info["fingerprint"]))
    if measured.contended:
        warnings.warn(f"the reference step time of {workload.name} ({workload.preset}) was measured on a shared "
                      "machine, so this machine's budget is too generous; `timetrial calibrate-speed` remeasures it")
    machine.store_step_time(info["fingerprint"], measured)
    return measured


def workload_info(workload: Workload, spec: TrialSpec) -> dict[str, Any]:
    """The TrialRecord fields that say what the trial was measured against."""
    return {
        "workload_family": workload.family,
        "variant_of": workload.variant_of,
        "target_metric": workload.target_metric,
        "target_direction": workload.target_direction,
        "target_value": workload.target_value,
        "budget_s": None if spec.step_based else workload.size.max_runtime_s * spec.budget_multiplier,
        "step_hint": workload.step_hint,
        "workload_definition": workload_definition(workload),
    }


@dataclasses.dataclass
class TrainState:
    step: int = 0
    submission_time_s: float = 0.0
    eval_time_s: float = 0.0
    evals: int = 0
    last_eval_submission_time_s: float = 0.0
    last_eval_step: int = 0
    time_to_target_s: float | None = None
    steps_to_target: int | None = None
    best_metric: float | None = None
    final_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    cpu_s: float = 0.0                     # process CPU time over the counted phases (harness/core/contention.py)
    machine_busy_s: float | None = 0.0     # every core's busy time over the same phases
    clock_probes: list[float] = dataclasses.field(default_factory=list)  # ClockProbe's readings, so a resume keeps them
    clock_probe_at_s: float | None = None


def _train(spec: TrialSpec, submission: Submission, workload: Workload, hyperparameters: Hyperparameters | None,
           trial_dir: Path, clock: Clock, logger, progress: bool, world: distributed.World,
           checkpoint_every_evals: int = 0, probe: ClockProbe | None = None) -> dict[str, Any]:
    """Train to the end of the budget (or the target); returns the TrialRecord fields of the outcome. With a
    `probe` the machine's speed is probed off the clock at evaluations PROBE_PERIOD_S apart and at the end
    (harness/core/contention.py)."""
    seed_everything(spec.seed)
    with world.rank0_first():  # rank 0 prepares missing data files (a cache); the others then load them
        workload.prepare_data()
    model, model_state = workload.init_model_fn(spec.seed)
    model = precision.prepare_model(model, workload.policy)
    workload.record_parameter_types(model)
    model = world.wrap(model)  # the submission trains one model; with N ranks DDP averages its gradients
    workload.metrics_logger = MetricsLogger()
    view = SubmissionWorkloadView(workload)
    params_types = workload.model_params_types
    seeds = prng.TrialSeeds(spec.seed, workload.framework)
    optimizer_state = submission.init_optimizer_state(view, model, model_state, hyperparameters, seeds.optimizer_init)
    passes_train_state = "train_state" in signature(submission.update_params).parameters
    batch_size = resolve_batch_size(submission, workload)
    budget = workload.size.max_runtime_s * spec.budget_multiplier
    # a step-based trial evaluates on its step grid only, so its evals fall on the same steps on any machine
    eval_period_s = math.inf if spec.step_based else spec.eval_period_s or workload.size.eval_period_s
    eval_period_steps = spec.eval_period_steps or workload.size.eval_period_steps
    state = TrainState()
    eval_results: list[tuple[int, dict[str, float]]] = []  # AlgoPerf's form: (step, algoperf_eval_result)
    status = TrialStatus.BUDGET
    resumed_from_steps: list[int] = []
    saved = checkpoint.load(trial_dir)
    if saved is not None:
        model = workload.load_params_state(model, saved["model"])
        model_state = checkpoint.load_state_tree(model_state, saved["model_state"], "model_state")
        optimizer_state = checkpoint.load_state_tree(optimizer_state, saved["optimizer_state"])
        state = TrainState(**saved["train_state"])
        eval_results, status = saved["eval_results"], saved["status"]
        resumed_from_steps = saved["resumed_from_steps"] + [state.step]
        checkpoint.restore_rng_states(saved["rng"])
        if world.writes:  # rows written after the checkpoint belong to the lost steps, which run again
            for name, lines in saved["log_lines"].items():
                checkpoint.truncate_lines(trial_dir / name, lines)
    input_queue = world.shard(workload.train_batches(batch_size, spec.seed, start_step=state.step))
    bar = _progress_bar(spec, budget) if progress else None
    meter = CpuMeter(cpu_s=state.cpu_s, machine_busy_s=state.machine_busy_s)
    if probe is not None:
        probe.readings, probe.last_at_s = list(state.clock_probes), state.clock_probe_at_s
    step_durations: list[float] = []  # this process's steps (a resumed trial's earlier steps are not here)
    threads, cpu_count = torch.get_num_threads(), os.cpu_count() or 1

    def contention():
        state.cpu_s, state.machine_busy_s = meter.cpu_s, meter.machine_busy_s
        return assess(state.cpu_s, state.machine_busy_s, state.submission_time_s, threads, cpu_count,
                      workload.device.type)

    checkpointed_at: list[int] = [state.step] if saved is not None else []

    def log_rows(name: str, rows: list[dict[str, Any]]) -> None:
        if world.writes:  # rank 0 alone writes the trial's files
            results.append_jsonl(trial_dir / name, rows)

    def save_checkpoint() -> None:
        contention()  # brings the CPU readings into `state`
        if probe is not None:
            state.clock_probes, state.clock_probe_at_s = list(probe.readings), probe.last_at_s
        checkpointed_at.append(state.step)
        if not world.writes:  # every rank holds the same state: rank 0's copy is the checkpoint
            return
        checkpoint.save(trial_dir, {
            "model": workload.params_state(model), "model_state": checkpoint.state_tree(model_state),
            "optimizer_state": checkpoint.state_tree(optimizer_state),
            "train_state": dataclasses.asdict(state), "eval_results": eval_results, "status": status,
            "resumed_from_steps": resumed_from_steps, "rng": checkpoint.rng_states(),
            "log_lines": {name: len(results.read_jsonl(trial_dir / name))
                          for name in (results.EVALS_FILE, results.TRAIN_FILE)},
        })

    def evaluate() -> bool:
        """Evaluate (untimed) and return True when the trial should stop."""
        nonlocal optimizer_state, model, model_state, status
        if submission.prepare_for_eval is not None:
            start = clock.now()
            meter.start()
            optimizer_state, model, model_state = submission.prepare_for_eval(
                view, model, params_types, model_state, hyperparameters, workload.loss_type,
                optimizer_state, eval_results, state.step, step_seeds.prepare_for_eval)
            state.submission_time_s += clock.now(model) - start
            meter.stop()
        eval_start = clock.now()
        # once, on rank 0, with the model inside DDP; every rank takes the same decisions from the metrics
        metrics = world.from_rank0(lambda: {k: float(v) for k, v in
                                            workload.eval_model(distributed.unwrap(model), model_state).items()})
        state.eval_time_s += clock.now() - eval_start
        if probe is not None:
            probe.take(state.submission_time_s)
        state.evals += 1
        state.last_eval_submission_time_s, state.last_eval_step = state.submission_time_s, state.step
        state.final_metrics = metrics
        value = metrics[workload.target_metric]
        better = min if workload.target_direction == "min" else max
        state.best_metric = value if state.best_metric is None or math.isnan(value) else better(state.best_metric, value)
        reached = math.isfinite(value) and workload.has_reached_target(metrics)
        if reached and state.time_to_target_s is None:
            state.time_to_target_s, state.steps_to_target = state.submission_time_s, state.step
        row = {"step": state.step, "submission_time_s": state.submission_time_s,
               "eval_time_s": state.eval_time_s, **metrics, "reached_target": reached}
        log_rows(results.EVALS_FILE, [row])
        train_rows = workload.metrics_logger.take_rows()  # rank 0's: the losses of its slice of each batch
        log_rows(results.TRAIN_FILE, train_rows)
        eval_results.append((state.step, algoperf_eval_result(
            metrics, workload, state.submission_time_s, state.eval_time_s, time.time() - started)))
        logger.log_eval(row)
        if bar is not None:
            bar.n = state.step if spec.step_based else min(round(state.submission_time_s, 1), bar.total)
            shared = {"clock": "CONTENDED"} if contention().contended else {}
            bar.set_postfix(step=state.step, **{workload.target_metric: f"{value:.4g}"},
                            target=f"{workload.target_value:.4g}", **shared)
        if world.any(not all(math.isfinite(v) for k, v in metrics.items() if "loss" in k)
                     or not all(math.isfinite(row.get("train_loss", 0.0)) for row in train_rows)):
            status = TrialStatus.DIVERGED
            return True
        if state.time_to_target_s is not None:
            status = TrialStatus.REACHED
            return spec.stop_at_target
        return False

    def train_state() -> dict[str, Any]:
        """AlgoPerf's `train_state`, for an `update_params` that takes it (read-only)."""
        return {"validation_goal_reached": state.time_to_target_s is not None,
                "test_goal_reached": True,  # AlgoPerf: met where a workload has no test split (none here has)
                "is_time_remaining": state.submission_time_s < budget,
                "last_eval_time": state.last_eval_submission_time_s, "training_complete": False,
                "accumulated_submission_time": state.submission_time_s, "accumulated_eval_time": state.eval_time_s,
                "accumulated_logging_time": 0.0, "last_step_end_time": last_step_end}

    started = time.time()
    # a step past the budget is cut (harness/core/watchdog.py): where a signal handler can be set, one process
    cuts = (watchdog.StepWatchdog() if math.isfinite(budget) and not world.distributed
            and threading.current_thread() is threading.main_thread() else None)
    last_step_end = clock.now()
    meter.start()
    finished = False
    error = None
    try:
        while not finished:
            step_seeds = seeds.at_step(state.step)  # ~5 us, counted as AlgoPerf counts its seed splits
            extra = {"train_state": MappingProxyType(train_state())} if passes_train_state else {}
            batch = submission.data_selection(view, input_queue, optimizer_state, model, model_state,
                                              hyperparameters, state.step, step_seeds.data_selection)
            complete = False
            if cuts is not None:
                cuts.arm(budget * (1 + watchdog.GRACE) - state.submission_time_s)
            try:
                optimizer_state, model, model_state = submission.update_params(
                    view, model, params_types, model_state, hyperparameters, batch, workload.loss_type,
                    optimizer_state, eval_results, state.step, step_seeds.update_params, **extra)
            except TrainingCompleteError:
                complete = True
            except watchdog.StepOverBudget:  # counted, not a step: the trial ends at its last evaluation
                state.submission_time_s += clock.now(model) - last_step_end
                meter.stop()  # the cut step's CPU time counts beside its wall time
                error = (f"step {state.step + 1} was cut at {state.submission_time_s:.1f} s of counted time, "
                         f"{watchdog.GRACE:.0%} past the budget of {budget:.1f} s")
                break
            finally:
                if cuts is not None:
                    cuts.disarm()
            state.step += 1
            now = clock.now(model)
            meter.stop()
            state.submission_time_s += now - last_step_end
            step_durations.append(now - last_step_end)
            last_step_end = now
            meter.start()
            out_of_budget = state.submission_time_s >= budget or (
                spec.max_steps is not None and state.step >= spec.max_steps)
            eval_due = (state.step == 1 or complete or out_of_budget
                        or state.submission_time_s - state.last_eval_submission_time_s >= eval_period_s
                        or (eval_period_steps is not None and (
                            state.step % eval_period_steps == 0 if spec.step_based  # the fixed grid
                            else state.step - state.last_eval_step >= eval_period_steps)))
            if eval_due:
                finished = evaluate()
                if checkpoint_every_evals and not (finished or complete or out_of_budget) \
                        and state.evals % checkpoint_every_evals == 0:
                    save_checkpoint()  # off the clock, like evaluation
                last_step_end = clock.now()
                meter.start()
            finished = finished or complete or out_of_budget
    except FloatingPointError as err:  # DivergedError, or a submission's own NaN check
        status, error = TrialStatus.DIVERGED, str(err)
        log_rows(results.TRAIN_FILE, workload.metrics_logger.take_rows())
    except KeyboardInterrupt:
        resume = (f"it resumes from the checkpoint at step {checkpointed_at[-1]}" if checkpointed_at
                  else "it has no checkpoint yet, so it starts again")
        raise TrialInterrupted(f"{spec.workload}/{spec.submission_label()} interrupted at step {state.step}; "
                               f"rerun the same command to resume ({resume})") from None
    finally:
        if cuts is not None:
            cuts.close()
        if bar is not None:
            bar.close()
    if status == TrialStatus.BUDGET and state.time_to_target_s is not None:
        status = TrialStatus.REACHED
    if probe is not None:
        probe.take(state.submission_time_s, due_only=False)  # the end: a clock that moved late in the trial counts too
    outcome = {} if error is None else {"error": error}
    shared = contention()
    # the first steps allocate and warm caches; the median of the rest is the steady-state step
    steady = step_durations[machine.WARMUP_STEPS:] or step_durations
    return {
        **outcome,
        "status": status,
        "reached_target": state.time_to_target_s is not None,
        "time_to_target_s": state.time_to_target_s,
        "steps_to_target": state.steps_to_target,
        "steps": state.step,
        "batch_size": batch_size,
        "submission_time_s": state.submission_time_s,
        "eval_time_s": state.eval_time_s,
        "total_time_s": state.submission_time_s + state.eval_time_s,
        "evals": state.evals,
        "best_metric": state.best_metric,
        "final_metrics": state.final_metrics,
        "resumed_from_steps": resumed_from_steps,
        "median_step_time_s": statistics.median(steady) if steady else None,
        "cpu_time_s": shared.cpu_s,
        "cpu_share": shared.cpu_share,
        "other_cores": shared.other_cores,
        "contended": True if probe is not None and probe.moved() else shared.contended,
        **({} if probe is None else {"clock_probe_s": probe.median_s(), "clock_ratio": probe.ratio()}),
    }


def _progress_bar(spec: TrialSpec, budget: float):
    desc = f"{spec.workload} {spec.submission_label()}"
    if spec.step_based:
        return tqdm(total=spec.max_steps, unit="step", desc=desc, leave=False,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} steps {postfix}")
    return tqdm(total=round(budget, 1), unit="s", desc=desc,
                leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.0f}s {postfix}")
