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

A third reading catches a clock that moved with nothing shared: a fingerprint names the processor, not
its speed. On one VM kind (b6e5ba5d4586) resnet's reference step took 0.0405 s, 0.0846 s and 0.0469 s
on three occasions, each at CPU share ~0.98, so a cached budget was up to 2x off while cpu_share and
other_cores saw nothing. `clock_probe_s` times a fixed fp32 matmul; the median of probes taken beside the
reference step time is kept with it (machine.StepTime.probe_s), and a CPU trial timed against it probes
again off the clock (ClockProbe: at evaluations PROBE_PERIOD_S apart and at its end): `clock_ratio` = the
trial's median probe / the reference's. A
ratio outside [1/MAX_CLOCK_RATIO, MAX_CLOCK_RATIO] marks the trial contended too.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path

import torch

MIN_CPU_SHARE = 0.75
SPARE_CORES = 0.25
#: below this much counted wall time the readings are too coarse to judge (contended is then None)
MIN_WALL_S = 1.0
PROC_STAT = Path("/proc/stat")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal
#: the probe: PROBE_REPEATS timings of PROBE_BLOCK products of two PROBE_SIZE^2 fp32 matrices (~1.5 ms a product
#: on the 2-core EPYC VM, one thread; one product alone is too short to time steadily), their median; ~60 ms
PROBE_SIZE = 384
PROBE_BLOCK = 5
PROBE_REPEATS = 7
#: how many probes the reference step time keeps the median of (back to back, after its measuring run)
REFERENCE_PROBES = 9
#: a trial probes at its first evaluation, then at evaluations PROBE_PERIOD_S of counted time apart, and at its end:
#: a logistic-regression trial evaluates every 0.2 s, which a probe at each would double in wall time
PROBE_PERIOD_S = 5.0
#: medians of 9 back-to-back probes on that idle VM spread up to 1.22x (and 1.5x in a minute of bursts);
#: the moved clocks this is for were 1.5-2x
MAX_CLOCK_RATIO = 1.3


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


def clock_probe_s() -> float:
    """The machine's speed now, in seconds of one fixed matmul (the median over PROBE_REPEATS timings)."""
    left = torch.randn(PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(0))
    right = left.t().contiguous()
    torch.mm(left, right)  # allocation and first-call costs stay out of the timings
    timings = []
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        for _ in range(PROBE_BLOCK):
            torch.mm(left, right)
        timings.append((time.perf_counter() - start) / PROBE_BLOCK)
    return statistics.median(timings)


@dataclasses.dataclass
class ClockProbe:
    """A trial's probes of the machine's speed, against the median probe kept with its reference step time
    (None for a reference measured before probes were kept: then the trial's probe is recorded, no ratio)."""

    reference_s: float | None
    readings: list[float] = dataclasses.field(default_factory=list)
    last_at_s: float | None = None  # the counted time of the last reading

    def take(self, counted_s: float, due_only: bool = True) -> None:
        """Probe now (off the clock) if PROBE_PERIOD_S of counted time passed since the last reading, or always."""
        if not due_only or self.last_at_s is None or counted_s - self.last_at_s >= PROBE_PERIOD_S:
            self.readings.append(clock_probe_s())
            self.last_at_s = counted_s

    def median_s(self) -> float | None:
        return statistics.median(self.readings) if self.readings else None

    def ratio(self) -> float | None:
        """The trial's median probe / the reference's: > 1 a slower machine than its budget was measured on."""
        median = self.median_s()
        return None if median is None or not self.reference_s else round(median / self.reference_s, 3)

    def moved(self) -> bool:
        ratio = self.ratio()
        return ratio is not None and not 1 / MAX_CLOCK_RATIO <= ratio <= MAX_CLOCK_RATIO


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
