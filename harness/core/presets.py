"""What a preset fixes besides the workloads' sizes: the hardware it assumes and where its budgets
come from. AlgoPerf fixes 8 GPUs; timetrial's `cpu` preset fixes one torch thread per trial.

Why one thread at `cpu` (measured, docs/workloads_text_rec.md "Threads"): the cpu models are small, so
a second intra-op thread buys at most ~1.5x on a step and nothing when another process wants the
core; results then swing tenfold with the machine's load (AdaBelief on logreg_wine: 3-4 s to target
with 1 thread, missed in 20 s with 2). One thread per trial also lets `launcher=local` run one trial
per core, which keeps the machine's throughput.
"""

from __future__ import annotations

import dataclasses
import os

import torch


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    #: torch intra-op threads the harness sets for every trial; None leaves torch's default (GPUs)
    torch_threads: int | None
    #: True: the time budget is this machine's measured reference step time x step_hint x BUDGET_FACTOR
    #: (harness/core/machine.py); False: the workload's fixed `max_runtime_s` (the `tiny` CI smoke preset)
    measured_budget: bool


PRESET_POLICIES = {
    "tiny": Preset("tiny", torch_threads=1, measured_budget=False),
    "cpu": Preset("cpu", torch_threads=1, measured_budget=True),
    "full": Preset("full", torch_threads=None, measured_budget=True),
}
PRESETS = tuple(PRESET_POLICIES)


def preset_policy(name: str) -> Preset:
    if name not in PRESET_POLICIES:
        raise ValueError(f"unknown preset {name!r}; valid presets: {list(PRESETS)}")
    return PRESET_POLICIES[name]


#: one intra-op thread for XLA's CPU backend (JAX trials), which reads XLA_FLAGS once, when JAX first
#: starts it: a JAX trial in a fresh process (every launcher but `debug`) gets the preset's one thread
XLA_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def apply_threads(preset: str) -> int:
    """Set the preset's thread count in this process (torch's, and XLA's unless XLA_FLAGS is set);
    returns torch's count in force."""
    threads = preset_policy(preset).torch_threads
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD_FLAGS)
    return torch.get_num_threads()
