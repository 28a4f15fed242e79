"""The targets store: one committed file per preset, `configs/targets/<preset>.yaml`.

A target belongs to a workload and a preset, never to a machine: the file is chosen by the preset
alone, and nothing about the hardware or the thread count selects an entry (time budgets are the
machine's, harness/core/machine.py). `timetrial calibrate` writes entries (harness/study/calibrate.py); the
registry applies them when it builds a workload. An entry:

    workloads:
      gpt2:
        target_value: 2.01        # median over the reruns of their best validation metric
        step_hint: 1200           # the step budget the target was set with
        tuned:                    # each baseline's best point: its published tuned configuration
          nadamw: {learning_rate: ..., ...}
        provenance: {...}         # protocol, dates, machines, reruns (calibrate.py writes it)

$TIMETRIAL_TARGETS_DIR replaces `configs/targets/` (tests, a private calibration).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.core.provenance import REPO_ROOT
from harness.core.results import atomic_write_text
from harness.core.spec import PresetSize

REQUIRED_FIELDS = ("target_value", "step_hint")
ENTRY_FIELDS = (*REQUIRED_FIELDS, "tuned", "provenance")


class TargetsFileError(ValueError):
    pass


class PlainDumper(yaml.SafeDumper):
    """Writes a mapping that appears twice (the best point is also a baseline's tuned point) in full
    both times, without YAML anchors and aliases, so a person reads each entry on its own."""

    def ignore_aliases(self, data):
        return True


def targets_dir() -> Path:
    return Path(os.environ.get("TIMETRIAL_TARGETS_DIR") or REPO_ROOT / "configs" / "targets")


def targets_file(preset: str) -> Path:
    return targets_dir() / f"{preset}.yaml"


@functools.cache
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise TargetsFileError(f"{path}: not valid YAML ({err})") from None
    workloads = raw.get("workloads", {}) if isinstance(raw, dict) else None
    if not isinstance(workloads, dict):
        raise TargetsFileError(f"{path}: expected a mapping with a 'workloads' mapping of name -> entry")
    for name, entry in workloads.items():
        entry = entry if isinstance(entry, dict) else {}
        unknown = set(entry) - set(ENTRY_FIELDS)
        missing = set(REQUIRED_FIELDS) - set(entry)
        if unknown or missing:
            raise TargetsFileError(f"{path}: workloads.{name} has unknown keys {sorted(unknown)} / lacks "
                                   f"{sorted(missing)}; valid keys: {list(ENTRY_FIELDS)}")
    return raw


def read_targets(preset: str) -> dict[str, Any]:
    """The parsed targets file of `preset` (validated), or {} when there is none."""
    path = targets_file(preset)
    if not path.exists():
        return {}
    return _read(path, path.stat().st_mtime_ns)


def entry(workload: str, preset: str) -> Mapping[str, Any] | None:
    return read_targets(preset).get("workloads", {}).get(workload)


def targeted_size(workload: str, preset: str, size: PresetSize) -> PresetSize:
    """`size` with the committed target of (workload, preset), if the store has one that was set with
    the workload's step_hint (a target set for another horizon is stale: the code's target stays, with a warning)."""
    found = entry(workload, preset)
    if found is None:
        return size
    if int(found["step_hint"]) != size.step_hint:
        warnings.warn(f"{targets_file(preset)}: the target of {workload} was set with step_hint {found['step_hint']}, "
                      f"but the workload now has {size.step_hint}; using the code's target until "
                      f"`timetrial calibrate workload={workload} preset={preset}` sets it again")
        return size
    return dataclasses.replace(size, target_value=float(found["target_value"]))


def tuned_point(workload: str, preset: str, submission: str) -> dict[str, Any] | None:
    """A baseline's tuned hyperparameters from target setting, or None."""
    found = entry(workload, preset) or {}
    point = (found.get("tuned") or {}).get(submission)
    return dict(point) if point is not None else None


@dataclasses.dataclass(frozen=True)
class FastestRerun:
    """The calibration's rerun that met the target first: what a test reruns to show the target is
    reachable late in the horizon (seeds 1..N are the reruns, harness/study/calibrate.py)."""

    submission: str
    hyperparameters: dict[str, Any]
    seed: int
    steps_to_target: int


def fastest_rerun(workload: str, preset: str) -> FastestRerun | None:
    """None until the protocol has set the target (or when no rerun met it)."""
    provenance = (entry(workload, preset) or {}).get("provenance") or {}
    hits = provenance.get("rerun_steps_to_target") or []
    met = [(steps, i) for i, steps in enumerate(hits) if steps is not None]
    if not met:
        return None
    steps, index = min(met)
    return FastestRerun(provenance["best_submission"], dict(provenance["best_hyperparameters"]), index + 1, steps)


def write_entry(preset: str, workload: str, new_entry: Mapping[str, Any]) -> Path:
    """Add or replace one workload's entry, keeping the others (atomic write)."""
    path = targets_file(preset)
    document = dict(read_targets(preset)) or {"preset": preset, "workloads": {}}
    workloads = dict(document.get("workloads", {}))
    workloads[workload] = dict(new_entry)
    document["workloads"] = dict(sorted(workloads.items()))
    header = (f"# Targets of the `{preset}` preset, written by `timetrial calibrate` (harness/study/calibrate.py).\n"
              "# They belong to the workload and preset: every machine uses them; budgets are measured per machine.\n")
    atomic_write_text(path, header + yaml.dump(document, Dumper=PlainDumper, sort_keys=False, width=110))
    return path
