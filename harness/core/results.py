"""The results tree: one directory per trial with `evals.jsonl` and an atomically written
`result.json`; pandas reads the whole tree into one table."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping

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


def _jsonable(value: Any) -> Any:
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


def read_result(trial_dir: Path) -> dict[str, Any] | None:
    """The trial's record; None when there is none, or when it is truncated or corrupt (a warning names
    the file: the trial then counts as not run, so it runs again)."""
    file = Path(trial_dir) / RESULT_FILE
    if not file.exists():
        return None
    try:
        record = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        warnings.warn(f"{file}: unreadable result ({err}); skipped, and the trial runs again when its sweep reruns")
        return None
    if not isinstance(record, dict):
        warnings.warn(f"{file}: not a result record (a JSON {type(record).__name__}); skipped")
        return None
    return record


def result_files(results_dir: Path) -> list[Path]:
    return sorted(Path(results_dir).rglob(RESULT_FILE))


def load_results(results_dir: Path) -> pd.DataFrame:
    """Every trial under `results_dir` as one row; nested fields flattened with dots."""
    records = []
    for file in result_files(results_dir):
        record = read_result(file.parent)
        if record is None:
            continue
        if "ruleset" not in record:
            raise ValueError(f"{file} has no ruleset/study/trial fields (written before timetrial recorded them); "
                             f"run `python scripts/migrate_results.py {results_dir}` once")
        record["trial_dir"] = str(file.parent)
        records.append(record)
    if not records:
        return pd.DataFrame()
    return pd.json_normalize(records)
