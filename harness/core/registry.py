"""Workload discovery: every package under workloads/ lists its workload classes in `WORKLOADS`."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from harness.core.spec import Workload
from harness.core.targets import targeted_size


class UnknownWorkloadError(KeyError):
    def __str__(self) -> str:
        return self.args[0]

WORKLOADS_DIR = Path(__file__).resolve().parents[2] / "workloads"


@functools.cache
def workload_classes() -> dict[str, type[Workload]]:
    found: dict[str, type[Workload]] = {}
    for package in sorted(p.parent.name for p in WORKLOADS_DIR.glob("*/__init__.py")):
        module = importlib.import_module(f"workloads.{package}")
        for cls in getattr(module, "WORKLOADS", ()):
            if cls.name in found:
                raise RuntimeError(f"workload name {cls.name!r} is defined twice (workloads/{package})")
            found[cls.name] = cls
    return found


def workload_class(name: str) -> type[Workload]:
    classes = workload_classes()
    if name not in classes:
        raise UnknownWorkloadError(f"unknown workload {name!r}; valid: {sorted(classes)}")
    return classes[name]


def make_workload(name: str, preset: str = "cpu", data_dir: str | None = None, device: str = "cpu",
                  framework: str = "pytorch") -> Workload:
    """The workload at `preset` with its committed target and step_hint (configs/targets/<preset>.yaml)."""
    workload = workload_class(name).implementation(framework)(preset=preset, data_dir=data_dir, device=device)
    workload.size = targeted_size(name, preset, workload.size)
    return workload


def base_workloads() -> list[str]:
    return sorted(n for n, cls in workload_classes().items() if cls.variant_of is None)


def variants_of(name: str) -> list[str]:
    return sorted(n for n, cls in workload_classes().items() if cls.variant_of == name)
