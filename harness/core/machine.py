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

A fingerprint does not pin a machine's speed (a VM's host changes under it: one fingerprint measured 1.5-1.8x
faster one day than its kept budgets). So the measurements belong to a **speed calibration**: each
`calibrate-speed` starts one, a first measurement on a fingerprint starts one, and later automatic
measurements join the current one. Starting a calibration retires the earlier calibration's measurements:
every workload is measured again on first use, so one calibration's budgets come from one period of the
machine's speed. Trials record the calibration of the step time they ran under, and a board in seconds holds
one (fingerprint, calibration) (harness/study/leaderboard.py). A fingerprint's first calibration, the one its
first automatic measurements start, is "" (so two trials measuring at once on a new machine agree on it;
files and records from before calibrations were kept are in it too); `calibrate-speed` names its own by the
time it started.
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
    #: the speed calibration the measurement belongs to (module docstring); "": the fingerprint's first
    speed_calibration: str = ""

    def budget_s(self, step_hint: int) -> float:
        return round(step_hint * self.step_time_s * BUDGET_FACTOR, 1)


def machine_key(fingerprint: str, speed_calibration: str) -> str:
    """'fingerprint', or 'fingerprint, speed calibration <id>' after its first: what a board in seconds is for."""
    return f"{fingerprint}, speed calibration {speed_calibration}" if speed_calibration else fingerprint


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


def current_speed_calibration(fingerprint: str) -> str:
    """The calibration a measurement taken now joins: the machine file's, "" (the first) where there is none."""
    return _read(fingerprint).get("speed_calibration", "")


def start_speed_calibration(fingerprint: str) -> str:
    """Start a new speed calibration on this fingerprint (its earlier measurements retire); returns its id."""
    document = _read(fingerprint) or {"fingerprint": fingerprint, "step_times": {}}
    document["speed_calibration"] = now_iso()
    atomic_write_json(machine_file(fingerprint), document)
    return document["speed_calibration"]


def cached_step_time(fingerprint: str, workload: str, preset: str, definition: str) -> StepTime | None:
    """The kept measurement of this definition in the current calibration (None: measure it)."""
    document = _read(fingerprint)
    found = document.get("step_times", {}).get(f"{workload}/{preset}")
    if found is None or found.get("definition") != definition:
        return None
    measured = StepTime(**found)
    return measured if measured.speed_calibration == document.get("speed_calibration", "") else None


def store_step_time(fingerprint: str, measured: StepTime) -> Path:
    """Keep a measurement; a new machine file takes the measurement's calibration as its current one."""
    document = _read(fingerprint) or {"fingerprint": fingerprint, "step_times": {}}
    document.setdefault("speed_calibration", measured.speed_calibration)
    document.setdefault("hardware", dict(measured.hardware))
    document.setdefault("step_times", {})[f"{measured.workload}/{measured.preset}"] = dataclasses.asdict(measured)
    path = machine_file(fingerprint)
    atomic_write_json(path, document)
    return path


def adopt_recorded(fingerprint: str, recorded: Iterable[Mapping[str, Any]]) -> list[StepTime]:
    """Cache the reference step times that trials on this fingerprint recorded (`TrialRecord.reference_step_time`)
    wherever the cache holds no measurement of that definition in its current calibration, the latest per
    workload and preset: a board resumed after its machine folder was lost keeps the budgets its finished rows
    ran under instead of remeasuring one that differs by the clock's noise. Only measurements of the current
    calibration are adopted (without a file: of the latest recorded measurement's), so a calibration started
    since is not undone. Returns the adopted ones."""
    recorded = [StepTime(**found) for found in recorded]
    if not recorded:
        return []
    document = _read(fingerprint)
    current = (document.get("speed_calibration", "") if document
               else max(recorded, key=lambda found: found.measured_at).speed_calibration)
    latest: dict[str, StepTime] = {}
    for found in recorded:
        key = f"{found.workload}/{found.preset}"
        if found.speed_calibration == current and (key not in latest or found.measured_at > latest[key].measured_at):
            latest[key] = found
    adopted = [found for key, found in sorted(latest.items())
               if cached_step_time(fingerprint, found.workload, found.preset, found.definition) is None]
    for measured in adopted:
        store_step_time(fingerprint, measured)
    return adopted


def all_step_times(fingerprint: str) -> list[StepTime]:
    return [StepTime(**found) for found in _read(fingerprint).get("step_times", {}).values()]


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
