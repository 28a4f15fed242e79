"""Data time vs step time for every workload whose data is present, at one preset, on the present device.

    python scripts/bench_data.py [--preset cpu] [--steps 20] [--workloads resnet vit ...] [--data-dir data]
                                 [--device auto] [--random-data]

For each workload: the median time of `next(train_batches)` (data time) and of one forward + backward +
AdamW step (step time) over the same steps, side by side, and their ratio, under the workload's
precision policy. The goal is data time < 2% of step time. Exits 1 when a workload misses it.
`--random-data` writes random data of the real shapes and format for datasets that are absent
(`preset full` on a machine without CIFAR-10, FineWeb-Edu or Criteo 1TB: use a scratch --data-dir),
so the real input pipeline runs: device-held CIFAR-10 with on-device crop + flip, memory-mapped
token files and streamed Criteo chunks copied through pinned memory.
"""

from __future__ import annotations

import argparse
import os
import sys

import stepbench
from harness.core import registry
from harness.core.presets import apply_threads
from harness.core.runner import resolve_device

GOAL = 0.02


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["tiny", "cpu", "full"])
    parser.add_argument("--steps", type=int, default=20, help="measured steps per workload")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured first steps")
    parser.add_argument("--workloads", nargs="*", help="names (default: every workload whose data is present)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--random-data", action="store_true",
                        help="write random data of the real shapes into --data-dir where a dataset is absent")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    threads = apply_threads(args.preset)
    names = args.workloads or sorted(registry.workload_classes())
    print(f"preset {args.preset} on {device} ({threads} torch threads); load average {os.getloadavg()[0]:.2f}",
          flush=True)
    rows, skipped = [], []
    for name in names:
        workload = stepbench.ready_workload(name, args.preset, args.data_dir, device, args.random_data)
        if workload is None:
            skipped.append(name)
            continue
        model, model_state = workload.init_model_fn(0)
        times = stepbench.time_steps(workload, model, model_state, args.steps, args.warmup)
        del model, model_state  # the next workload's memory is its own
        rows.append((name, workload.policy.precision, times))
    print(f"{'workload':32s} {'batch':>7s} {'precision':>9s} {'data ms':>9s} {'step ms':>9s} {'data/step':>10s}")
    for name, compute, times in rows:
        ratio = times.data_s / times.step_s
        flag = "" if ratio < GOAL else f"  over the {GOAL:.0%} goal"
        print(f"{name:32s} {times.batch_size:7d} {compute:>9s} {1e3 * times.data_s:9.3f} {1e3 * times.step_s:9.1f} "
              f"{ratio:10.2%}{flag}")
    if skipped:
        print(f"skipped (data not prepared; --random-data writes stand-ins): {', '.join(skipped)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if all(times.data_s / times.step_s < GOAL for _, _, times in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
