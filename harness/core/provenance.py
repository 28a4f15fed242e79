"""Where a result came from: code version, submission source, hardware, libraries, seed."""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo; empty off Linux."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


@functools.cache
def cpu_kind() -> str:
    """The processor's generation and the vector unit torch's kernels use, e.g. "family 25 model 1 stepping 1
    AVX2". A VM's model name can hide the chip: two VMs both called "AMD EPYC" ran the same step-based
    trials to metrics 0.2-1.1% apart (other kernels), so the fingerprint needs these too."""
    fields = _cpuinfo()
    generation = [f"{label} {fields[name]}" for name, label in
                  (("cpu family", "family"), ("model", "model"), ("stepping", "stepping")) if name in fields]
    return " ".join(generation + [torch.backends.cpu.get_cpu_capability()])


def gpu_model(device: torch.device) -> str | None:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return None


def hardware(device: torch.device, ranks: int = 1) -> dict:
    """What a trial ran on; `ranks` > 1 for a data-parallel trial, whose N ranks are N times the hardware:
    its fingerprint differs, so boards never rank it beside single-process trials."""
    info = {
        "cpu": cpu_model(),
        "cpu_kind": cpu_kind(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu_model(device),
        "device": device.type,
    }
    key = f"{info['cpu']}|{info['cpu_kind']}|{info['torch_threads']}|{info['gpu'] or 'no-gpu'}"
    label = f"{info['gpu'] or info['cpu'] + ' ' + info['cpu_kind']} ({info['torch_threads']} threads)"
    if ranks > 1:
        info["ranks"] = ranks
        key, label = f"{key}|{ranks} ranks", f"{label} x {ranks} ranks"
    info["fingerprint"] = hashlib.sha256(key.encode()).hexdigest()[:12]
    info["label"] = label
    return info


def framework_versions(framework: str) -> dict:
    """Versions of the framework's own libraries beyond torch (which every trial records)."""
    if framework != "jax":
        return {}
    import jax
    import optax

    return {"jax": jax.__version__, "optax": optax.__version__, "jax_devices": [str(d) for d in jax.devices()]}


def provenance(device: torch.device, seed: int, submission_hash: str | None, framework: str = "pytorch") -> dict:
    return {
        "git_commit": git_commit(),
        "submission_source_hash": submission_hash,
        "host": socket.gethostname(),
        "hardware": hardware(device),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        **framework_versions(framework),
        "seed": seed,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
