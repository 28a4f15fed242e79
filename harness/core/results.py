"""The results tree: one directory per trial with `evals.jsonl` and an atomically written
`result.json`, the trial's TrialRecord; pandas reads the whole tree into one table."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import json
import math
import os
import re
import tempfile
import typing
import warnings
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

import pandas as pd

RESULT_FILE = "result.json"
EVALS_FILE = "evals.jsonl"
TRAIN_FILE = "train.jsonl"


class TrialStatus(enum.StrEnum):
    """A trial's `status`; a StrEnum, so records, frames and f-strings see the plain string."""

    REACHED = "reached"          # met the target within the budget
    BUDGET = "budget"            # ran out of time (or steps) without meeting it
    DIVERGED = "diverged"        # a NaN/inf loss
    UNSUPPORTED = "unsupported"  # the submission declared the workload out of its scope
    FAILED = "failed"            # crashed (the traceback is in the record); reruns
    QUEUED = "queued"            # handed to a launcher, not started (sweep receipts)
    SUBMITTED = "submitted"      # a cluster job that has not written its record yet


FINISHED = (TrialStatus.REACHED, TrialStatus.BUDGET, TrialStatus.DIVERGED, TrialStatus.UNSUPPORTED)
#: the fields that say where a trial belongs (harness.core.runner.TrialSpec); records before them had a tag only
PLACEMENT_FIELDS = ("ruleset", "study", "trial")


class UnmigratedRecordError(ValueError):
    """A result.json written before PLACEMENT_FIELDS existed: scripts/migrate_results.py rewrites it once."""


@dataclasses.dataclass(frozen=True)
class Placement:
    ruleset: str
    study: int | None
    trial: int | None


_LEGACY_TAG = re.compile(r"^(?P<ruleset>[^/]+)/study(?P<study>\d+)(?:/trial(?P<trial>\d+))?$")


def legacy_placement(tag: str) -> Placement:
    """The placement a record written before PLACEMENT_FIELDS meant by its tag ('external/study2/trial3',
    'self/study1', 'bench'); only scripts/migrate_results.py reads tags."""
    match = _LEGACY_TAG.match(tag)
    if match is None:
        return Placement(tag, None, None)
    return Placement(match["ruleset"], int(match["study"]), int(match["trial"]) if match["trial"] else None)


def _part(name: str) -> Any:
    """A field of part `name`: written with the rest of the part, nulls included, once any of it is set."""
    return dataclasses.field(default=None, metadata={"part": name})


#: what a record says in memory only, about how a sweep came by it; never written
_TRANSIENT = {"transient": True}


@dataclasses.dataclass
class TrialRecord:
    """One trial's result: what `<trial_dir>/result.json` holds, typed. harness.core.runner.run_trial
    makes it; only this module reads and writes the file.

    On disk it is one flat JSON object (sorted keys, NaN/inf as strings) with the keys result.json has
    always had, so published trees keep loading and load_results's columns keep their names. Keys come
    with the stage of the trial that set them: the fields of a part (the workload's target and budget,
    the training outcome) are written together, nulls included, once any of them is set, so a trial
    that never trained has no training keys and one that did has `best_metric: null` if it never
    evaluated; any other field is written unless it is None. Adding a field is one line: a part, or a
    default of None (absent until set), or the value old records without the key are read as.

    `provenance` (harness/core/provenance.py), `spec` (runner.TrialSpec as a dict: results sits below
    the runner), `hyperparameters`, `final_metrics` and `reference_step_time` (machine.StepTime as a
    dict) stay mappings: they are typed where they are made and only read as JSON here. `extra` keeps
    the keys this version does not know (a newer runner's fields) and writes them back. `skipped` (a
    finished trial reused, not run) and `job_id` (the job a sweep handed it to) are never written.
    """

    # which trial (runner.TrialSpec, resolved)
    workload: str
    submission: str                                   # a label: a path's stem; submission_ref as the spec named it
    preset: str
    seed: int
    ruleset: str = dataclasses.field(metadata={"part": "placement"})
    tag: str                                          # the placement as one name: the trial folder's prefix
    status: TrialStatus
    study: int | None = _part("placement")
    trial: int | None = _part("placement")
    submission_ref: str | None = None
    framework: str = "pytorch"
    trial_key: str | None = None                      # runner.TrialSpec.key(), which names the folder
    spec: dict[str, Any] | None = None
    timing_version: int | None = None                 # runner.TIMING_VERSION; None: recorded before it, timed as 1
    # set from the start, so a failed trial has them too
    reached_target: bool = dataclasses.field(default=False, metadata={"part": "target"})
    time_to_target_s: float | None = _part("target")
    steps_to_target: int | None = _part("target")
    wall_time_s: float | None = None                  # the whole run_trial call, evaluation included
    # what it ran with; absent when the trial failed before it got there
    torch_threads: int | None = None
    provenance: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] | None = None     # the submission's defaults under the spec's
    # the workload and its budget (runner.workload_info, runner.apply_budget)
    workload_family: str | None = _part("workload")
    variant_of: str | None = _part("workload")
    target_metric: str | None = _part("workload")
    target_direction: str | None = _part("workload")
    target_value: float | None = _part("workload")
    budget_s: float | None = _part("workload")         # None for a step-based trial: no time budget
    step_hint: int | None = _part("workload")
    workload_definition: str | None = None            # runner.workload_definition; None: recorded before it
    reference_step_time_s: float | None = None        # this machine's (presets with a measured budget)
    reference_step_time: dict[str, Any] | None = None
    # training (runner._train)
    steps: int | None = _part("training")
    batch_size: int | None = _part("training")
    submission_time_s: float | None = _part("training")
    eval_time_s: float | None = _part("training")
    total_time_s: float | None = _part("training")
    evals: int | None = _part("training")
    best_metric: float | None = _part("training")
    final_metrics: dict[str, Any] | None = _part("training")
    resumed_from_steps: list[int] | None = _part("training")  # the step of each checkpoint it resumed from
    # the clock's own figures: the steady step time and whether other work shared the CPU
    # (harness/core/contention.py); a part of their own, as the published trees' records predate them
    median_step_time_s: float | None = _part("clock")
    cpu_time_s: float | None = _part("clock")
    cpu_share: float | None = _part("clock")
    other_cores: float | None = _part("clock")
    contended: bool | None = _part("clock")
    # CPU trials with a measured budget: the median clock probe at its evaluations and its ratio to the one kept
    # with the reference step time (harness/core/contention.py); absent where no probe was taken
    clock_probe_s: float | None = None
    clock_ratio: float | None = None
    time_to_target_reference_steps: float | None = None  # time_to_target_s / reference_step_time_s
    # the workload's precision policy as applied (harness/core/precision.py)
    precision: str | None = None
    tf32: bool | None = None
    compiled: bool | None = None
    # data-parallel trials (harness/core/distributed.py); absent for one process
    world_size: int | None = None
    backend: str | None = None
    rank_errors: dict[str, Any] | None = None      # a failed trial's other ranks: {rank: {error, traceback}}
    error: str | None = None
    traceback: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    skipped: bool = dataclasses.field(default=False, metadata=_TRANSIENT)
    job_id: str | None = dataclasses.field(default=None, metadata=_TRANSIENT)

    def __post_init__(self) -> None:
        self.status = TrialStatus(self.status)  # a plain string (from JSON, or a test) is checked here

    def to_json(self) -> dict[str, Any]:
        """The record as result.json holds it: plain JSON values, the keys of every part that is set."""
        stored = _stored_fields()
        parts = {_part_of(f) for f in stored if getattr(self, f.name) is not None}
        return _jsonable({**self.extra, **{f.name: getattr(self, f.name) for f in stored if _part_of(f) in parts}})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRecord:
        """The record a result.json object holds: missing keys take their defaults, unknown ones go to
        `extra`, and NaN/inf written as strings are floats again. Raises UnmigratedRecordError without
        the placement fields, TypeError without another field every record has, ValueError for an
        unknown status."""
        missing = [name for name in PLACEMENT_FIELDS if name not in data]
        if missing:
            raise UnmigratedRecordError(f"no {'/'.join(missing)} field (written before timetrial recorded them); "
                                        "run `python scripts/migrate_results.py RESULTS_DIR` on its tree once")
        names = {f.name for f in _stored_fields()}
        known = {name: float(value) if name in _FLOAT_FIELDS and isinstance(value, str) else value
                 for name, value in data.items() if name in names}
        return cls(**known, extra={name: value for name, value in data.items() if name not in names})


def _stored_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrialRecord) if f.name != "extra" and not f.metadata.get("transient")]


def _part_of(field: dataclasses.Field) -> str:
    return field.metadata.get("part", field.name)


#: the fields _jsonable may have written as "nan"/"inf"
_FLOAT_FIELDS = frozenset(name for name, hint in typing.get_type_hints(TrialRecord).items()
                          if hint is float or float in typing.get_args(hint))


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; "nan"/"inf" read back with float()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    return value


def comparable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists, NaN as a string), to compare a record with
    what a new run would write."""
    return json.loads(json.dumps(_jsonable(value), sort_keys=True))


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False) -> None:
    """`write(handle)` into a temp file in the same folder, fsync, rename: readers never see half a file,
    and a job killed mid-write leaves the old one intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if missing) for the block: concurrent trials
    that prepare the same data folder on first use take turns, so one generates and the others find it
    done, instead of racing on the same temp files (two dlrm_small calibration trials did)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, also if the process dies
        yield


def prepare_once(lock: Path, is_prepared: Callable[[], bool], prepare: Callable[[], None]) -> None:
    """Run `prepare` unless `is_prepared()`: under `exclusive_lock(lock)`, checked again inside it, so of
    concurrent first trials one prepares and the others wait and find the data done."""
    if is_prepared():
        return
    with exclusive_lock(lock):
        if not is_prepared():
            prepare()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text))


def atomic_write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def append_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with open(path, "a") as handle:
        for row in rows:
            handle.write(json.dumps(_jsonable(row)) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def read_result_json(trial_dir: Path) -> dict[str, Any] | None:
    """result.json as stored, before it is a TrialRecord (scripts/migrate_results.py reads unmigrated
    records with it); None when there is none, or when it is truncated or corrupt (with a warning
    naming the file: the trial then counts as not run, so it runs again)."""
    file = Path(trial_dir) / RESULT_FILE
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        warnings.warn(f"{file}: unreadable result ({err}); skipped, and the trial runs again when its sweep reruns")
        return None
    if not isinstance(data, dict):
        warnings.warn(f"{file}: not a result record (a JSON {type(data).__name__}); skipped")
        return None
    return data


def read_result(trial_dir: Path) -> TrialRecord | None:
    """The trial's record; None when there is none or it is unreadable (see read_result_json), or it
    lacks a field every record has or holds an unknown status (also warned). Raises
    UnmigratedRecordError for a record without placement fields: rerunning it would replace a result
    that a migration keeps."""
    data = read_result_json(trial_dir)
    if data is None:
        return None
    file = Path(trial_dir) / RESULT_FILE
    try:
        return TrialRecord.from_json(data)
    except UnmigratedRecordError as err:
        raise UnmigratedRecordError(f"{file}: {err}") from None
    except (TypeError, ValueError) as err:
        warnings.warn(f"{file}: not a result record ({err}); skipped, and the trial runs again when its sweep reruns")
        return None


def write_result(trial_dir: Path, record: TrialRecord) -> None:
    """`<trial_dir>/result.json`, written atomically."""
    atomic_write_json(Path(trial_dir) / RESULT_FILE, record.to_json())


def result_files(results_dir: Path) -> list[Path]:
    """The records of the tree's own trials, all under `<results_dir>/trials/` (TrialSpec.trial_dir): a tree
    kept inside another, as the deep suite's board in progress (results/deep-cpu) inside the published one,
    is read as a tree of its own and never mixes into the outer board."""
    return sorted((Path(results_dir) / "trials").rglob(RESULT_FILE))


def load_results(results_dir: Path) -> pd.DataFrame:
    """Every trial under `results_dir` as one row, its columns the keys of result.json (nested ones
    flattened with dots: `provenance.hardware.fingerprint`), plus `trial_dir`."""
    rows = []
    for file in result_files(results_dir):
        record = read_result(file.parent)
        if record is not None:
            rows.append({**record.to_json(), "trial_dir": str(file.parent)})
    if not rows:
        return pd.DataFrame()
    return pd.json_normalize(rows)
