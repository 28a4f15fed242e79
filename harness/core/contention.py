"""Was the clock shared? CPU time beside wall time for a trial's counted phases.

Two readings, both taken at the same instants as the trial clock:
- this process's CPU time (`time.process_time`, all its threads): `cpu_share` = CPU s / wall s. A
  one-thread trial that had its core to itself runs at ~1.0; one that shared it runs below.
- the machine's busy time (Linux `/proc/stat`: user, nice, system, irq, softirq and steal, the time a
  hypervisor gave our virtual cores to others) minus ours: `other_cores`, the mean number of cores
  other work kept busy meanwhile.

A trial is `contended` when, on a CPU device, a one-thread trial's cpu_share is below
MIN_CPU_SHARE, or other work used more cores than the trial left free (cpu_count - torch threads)
by more than SPARE_CORES. Over less than MIN_WALL_S of counted time it is None (not judged). On a GPU the process waits for the device, so only `other_cores` counts.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

MIN_CPU_SHARE = 0.75
SPARE_CORES = 0.25
#: below this much counted wall time the readings are too coarse to judge (contended is then None)
MIN_WALL_S = 1.0
PROC_STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal


def machine_busy_s() -> float | None:
    """Seconds of CPU time all cores have been busy since boot, or None off Linux."""
    try:
        first = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(first[1 + i]) for i in BUSY_FIELDS) / ticks


@dataclasses.dataclass
class CpuMeter:
    """Accumulates CPU seconds over the same intervals as the trial clock (`start` ... `stop`)."""

    cpu_s: float = 0.0
    machine_busy_s: float | None = 0.0
    _cpu_mark: float | None = None
    _busy_mark: float | None = None

    def start(self) -> None:
        self._cpu_mark, self._busy_mark = time.process_time(), machine_busy_s()

    def stop(self) -> None:
        if self._cpu_mark is None:
            return
        self.cpu_s += time.process_time() - self._cpu_mark
        busy = machine_busy_s()
        if busy is None or self._busy_mark is None or self.machine_busy_s is None:
            self.machine_busy_s = None
        else:
            self.machine_busy_s += busy - self._busy_mark
        self._cpu_mark = None

    def state(self) -> dict:
        return {"cpu_s": self.cpu_s, "machine_busy_s": self.machine_busy_s}


@dataclasses.dataclass(frozen=True)
class Contention:
    cpu_s: float
    cpu_share: float | None
    other_cores: float | None
    contended: bool | None


def assess(cpu_s: float, machine_busy: float | None, wall_s: float, torch_threads: int, cpu_count: int,
           device_type: str) -> Contention:
    if wall_s <= 0:
        return Contention(cpu_s, None, None, False)
    share = cpu_s / wall_s
    others = None if machine_busy is None else max(0.0, machine_busy - cpu_s) / wall_s
    if wall_s < MIN_WALL_S:
        return Contention(cpu_s, round(share, 3), None if others is None else round(others, 3), None)
    starved = device_type == "cpu" and torch_threads == 1 and share < MIN_CPU_SHARE
    crowded = others is not None and others > max(0, cpu_count - torch_threads) + SPARE_CORES
    return Contention(cpu_s, round(share, 3), None if others is None else round(others, 3), starved or crowded)
