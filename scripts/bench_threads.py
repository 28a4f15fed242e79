"""Torch threads per trial: the reference baseline's median step time with 1 and with 2 threads on each
workload of a preset, measured side by side in one run (rounds alternate 1, 2, 1, 2, ...).

    .venv/bin/python scripts/bench_threads.py [--preset cpu] [--workloads gpt2,resnet] [--rounds 3]

Prints per workload the median step time at each thread count, the speed-up of the second thread
(t1 / t2) and the throughput of one 2-thread trial vs two 1-thread trials side by side (2 t2 / t1 ... as
trials per second: 2/t1 against 1/t2), with the load average before and after. This is what the
`cpu` preset's thread count was decided from (harness/core/presets.py, docs/targets.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile

from harness.core import presets
from harness.core.runner import TrialSpec, run_trial
from harness.study import sweep


def step_time(workload: str, preset: str, threads: int, steps: int, data_dir: str) -> float:
    presets.PRESET_POLICIES[preset] = dataclasses.replace(presets.PRESET_POLICIES[preset], torch_threads=threads)
    spec = TrialSpec(workload, "nadamw", preset=preset, max_steps=steps, eval_period_steps=10**9, step_based=True,
                     stop_at_target=False, ruleset=f"threads{threads}")
    with tempfile.TemporaryDirectory() as scratch:
        record = run_trial(spec, scratch, data_dir=data_dir, device="cpu")
    if record.torch_threads != threads or record.status not in ("budget", "reached"):
        raise RuntimeError(f"{workload} with {threads} threads: {record.status} {record.error or ''}")
    return record.median_step_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--workloads", default="all", help="comma-separated names, or all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="steps per measurement (the first 5 are not counted)")
    parser.add_argument("--data-dir", default=os.environ.get("TIMETRIAL_DATA_DIR", "data"))
    args = parser.parse_args()
    names = sweep.suite("all" if args.workloads == "all" else args.workloads.split(","), args.preset, args.data_dir)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; preset {args.preset}; "
          f"{args.rounds} rounds of 1 and 2 threads alternating, {args.steps} steps each")
    print(f"{'workload':24s} {'1 thread (s)':>12s} {'2 threads (s)':>13s} {'t1/t2':>6s} {'2 x 1-thread / 1 x 2-thread':>28s}")
    for name in names:
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.rounds):
            for threads in (1, 2):
                times[threads].append(step_time(name, args.preset, threads, args.steps, args.data_dir))
        t1, t2 = statistics.median(times[1]), statistics.median(times[2])
        print(f"{name:24s} {t1:12.4g} {t2:13.4g} {t1 / t2:6.2f} {(2 / t1) / (1 / t2):28.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
