"""Data time vs step time for every workload whose data is present (all families, `cpu` preset).

    python scripts/bench_data.py [--preset cpu] [--steps 20] [--workloads resnet vit ...] [--data-dir data]

For each workload: the mean time of `next(train_batches)` (data time) and of one forward +
backward + AdamW step (step time) over the same steps, side by side, and their ratio. The goal
is data time < 2% of step time. Exits 1 when a workload misses it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core import registry  # noqa: E402
from harness.core.closure import TrainingClosure  # noqa: E402
from harness.core.runner import Clock, resolve_device  # noqa: E402
from harness.core.spec import Hyperparameters  # noqa: E402

GOAL = 0.02


def bench(name: str, preset: str, steps: int, warmup: int, data_dir: str | None, device: torch.device) -> dict:
    """Median data and step times (seconds) of one workload, measured in the same loop."""
    workload = registry.make_workload(name, preset, data_dir, str(device))
    workload.prepare_data()
    model, model_state = workload.init_model_fn(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = workload.train_batches(workload.size.batch_size, seed=0)
    clock = Clock(workload.synchronize)
    data_times, step_times = [], []
    for step in tqdm(range(warmup + steps), desc=name, leave=False):
        start = clock.now()
        batch = next(batches)
        fetched = clock.now()
        closure = TrainingClosure(workload, model, model_state, batch, None, Hyperparameters())
        optimizer.step(closure)
        model_state = closure.model_state
        done = clock.now()
        if step >= warmup:
            data_times.append(fetched - start)
            step_times.append(done - fetched)
    data_s, step_s = statistics.median(data_times), statistics.median(step_times)
    return {"workload": name, "batch_size": workload.size.batch_size, "data_ms": 1e3 * data_s,
            "step_ms": 1e3 * step_s, "ratio": data_s / step_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["tiny", "cpu", "full"])
    parser.add_argument("--steps", type=int, default=20, help="measured steps per workload")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured first steps")
    parser.add_argument("--workloads", nargs="*", help="names (default: every workload whose data is present)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    names = args.workloads or sorted(registry.workload_classes())
    rows, skipped = [], []
    for name in names:
        workload = registry.make_workload(name, args.preset, args.data_dir, str(device))
        if not workload.data_available():
            skipped.append(name)
            continue
        rows.append(bench(name, args.preset, args.steps, args.warmup, args.data_dir, device))
    print(f"{'workload':32s} {'batch':>6s} {'data ms':>9s} {'step ms':>9s} {'data/step':>10s}")
    for row in rows:
        flag = "" if row["ratio"] < GOAL else f"  over the {GOAL:.0%} goal"
        print(f"{row['workload']:32s} {row['batch_size']:6d} {row['data_ms']:9.3f} {row['step_ms']:9.1f} "
              f"{row['ratio']:10.2%}{flag}")
    if skipped:
        print(f"skipped (data not prepared): {', '.join(skipped)}")
    return 0 if all(row["ratio"] < GOAL for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
