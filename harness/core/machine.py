"""What belongs to the machine: its measured reference step times, and the time budgets made from them.

AlgoPerf keeps targets fixed and moves only the budget between hardware (its A100 migration recomputed
each budget from step_hint x the measured step time). timetrial does the same per hardware
fingerprint (processor model and kind, torch threads, GPU):

    budget (s) = step_hint x reference step time x BUDGET_FACTOR

The reference step time is the median steady-state step of the reference baseline (NAdamW at its
tuned point from target setting, else its defaults), measured in a short step-based run the first
time a workload and preset run on a fingerprint (`harness.core.runner.reference_step_time`), cached in
`$TIMETRIAL_MACHINE_DIR/<fingerprint>.json` (default `~/.cache/timetrial/machines/`), and redone on
demand with `timetrial calibrate-speed`. A measurement is keyed by the workload's definition at the
preset and the reference point, so a changed workload or tuned point is measured again.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.core.results import atomic_write_json

#: budget = step_hint x reference step time x BUDGET_FACTOR: a third above the reference baseline's own
#: run, as the budgets timetrial set before (4/3 x target-setting time), so the reference reaches the
#: target with room for step-time noise.
BUDGET_FACTOR = 4 / 3
REFERENCE_SUBMISSION = "nadamw"
#: the measuring run: WARMUP_STEPS uncounted steps (first-step allocation, caches), then at least
#: MEASURED_STEPS steps and at least MIN_MEASURED_S seconds of them (fast steps need many for a stable median)
WARMUP_STEPS = 5
MEASURED_STEPS = 20
MIN_MEASURED_S = 2.0


@dataclasses.dataclass(frozen=True)
class StepTime:
    """One measured reference step time of (workload, preset) on one machine."""

    workload: str
    preset: str
    step_time_s: float
    definition: str           # hash of the workload's definition at the preset + the reference point
    reference: str            # the reference submission
    hyperparameters: Mapping[str, Any]
    steps: int                # steady-state steps the median is over
    contended: bool | None    # the measuring run shared its cores (then the budget is too generous)
    cpu_share: float | None
    measured_at: str
    hardware: Mapping[str, Any]
    #: the machine's speed beside the measurement (harness/core/contention.py's clock probe, median);
    #: None: measured before probes were kept
    probe_s: float | None = None

    def budget_s(self, step_hint: int) -> float:
        return round(step_hint * self.step_time_s * BUDGET_FACTOR, 1)


def machine_dir() -> Path:
    return Path(os.environ.get("TIMETRIAL_MACHINE_DIR") or Path.home() / ".cache" / "timetrial" / "machines")


def machine_file(fingerprint: str) -> Path:
    return machine_dir() / f"{fingerprint}.json"


def _read(fingerprint: str) -> dict[str, Any]:
    path = machine_file(fingerprint)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a damaged cache is measured again, never trusted


def cached_step_time(fingerprint: str, workload: str, preset: str, definition: str) -> StepTime | None:
    found = _read(fingerprint).get("step_times", {}).get(f"{workload}/{preset}")
    if found is None or found.get("definition") != definition:
        return None
    return StepTime(**found)


def store_step_time(fingerprint: str, measured: StepTime) -> Path:
    document = _read(fingerprint) or {"fingerprint": fingerprint, "hardware": dict(measured.hardware),
                                      "step_times": {}}
    document.setdefault("step_times", {})[f"{measured.workload}/{measured.preset}"] = dataclasses.asdict(measured)
    path = machine_file(fingerprint)
    atomic_write_json(path, document)
    return path


def adopt_recorded(fingerprint: str, recorded: Iterable[Mapping[str, Any]]) -> list[StepTime]:
    """Cache the reference step times that trials on this fingerprint recorded (`TrialRecord.reference_step_time`)
    wherever the cache holds no measurement of that definition, the latest per workload and preset: a board
    resumed after its machine folder was lost keeps the budgets its finished rows ran under instead of
    remeasuring one that differs by the clock's noise. Returns the adopted ones."""
    cached = _read(fingerprint).get("step_times", {})
    latest: dict[str, Mapping[str, Any]] = {}
    for found in recorded:
        key = f"{found['workload']}/{found['preset']}"
        if key not in latest or found["measured_at"] > latest[key]["measured_at"]:
            latest[key] = found
    adopted = [StepTime(**found) for key, found in sorted(latest.items())
               if cached.get(key, {}).get("definition") != found["definition"]]
    for measured in adopted:
        store_step_time(fingerprint, measured)
    return adopted


def all_step_times(fingerprint: str) -> list[StepTime]:
    return [StepTime(**found) for found in _read(fingerprint).get("step_times", {}).values()]


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
