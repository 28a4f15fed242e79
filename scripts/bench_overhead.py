"""Harness overhead: submission time of a timetrial trial vs a hand-written bare training loop of
the same model, data stream, optimizer and schedule, measured side by side in one run.

    .venv/bin/python scripts/bench_overhead.py [--workload logreg_digits] [--steps 2000] [--repeats 3]
                                               [--clock wall|thread]

Goal: ratio <= 1.02. Runs alternate (bare, harness, bare, ...) so drift on a shared machine hits both;
`--clock thread` times both with the thread's CPU time, which other processes on a busy machine
disturb far less than the wall clock (run single-threaded: OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

import torch

from optimlib import schedules
from harness.core.registry import make_workload
from harness.core.runner import TrialSpec, run_trial, seed_everything
from harness.core.spec import ForwardPassMode, Hyperparameters
from harness.core.submission import load_submission


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}


def bare_loop(workload_name: str, preset: str, steps: int, data_dir: str, clock=time.perf_counter) -> float:
    """AdamW + warm-up/cosine written out by hand: what a user would write without timetrial."""
    hp = Hyperparameters(load_submission("adamw").default_hyperparameters())
    workload = make_workload(workload_name, preset, data_dir)
    workload.prepare_data()
    seed_everything(0)
    model, model_state = workload.init_model_fn(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate,
                                  betas=(1 - hp.one_minus_beta1, hp.beta2), eps=hp.epsilon,
                                  weight_decay=hp.weight_decay)
    batches = workload.train_batches(workload.size.batch_size, 0)
    start = clock()
    for step in range(steps):
        batch = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = hp.learning_rate * schedules.warmup_cosine(step, workload.step_hint, hp.warmup_factor)
        optimizer.zero_grad(set_to_none=True)
        logits, model_state = workload.model_fn(model, batch, model_state, ForwardPassMode.TRAIN, None, True)
        out = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        (out["summed"] / out["n_valid_examples"]).backward()
        optimizer.step()
    return clock() - start


def harness_loop(workload_name: str, preset: str, steps: int, data_dir: str, clock=time.perf_counter) -> float:
    spec = TrialSpec(workload_name, "adamw", preset=preset, max_steps=steps, stop_at_target=False,
                     budget_multiplier=1e6, eval_period_s=1e9, eval_period_steps=10**9)
    with tempfile.TemporaryDirectory() as results_dir:
        record = run_trial(spec, results_dir, data_dir=data_dir, device="cpu", clock_fn=clock)
    assert record.status in ("reached", "budget"), record.error
    return record.submission_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="logreg_digits")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    bare, harness = [], []
    for _ in range(args.repeats):
        bare.append(bare_loop(args.workload, args.preset, args.steps, args.data_dir, CLOCKS[args.clock]))
        harness.append(harness_loop(args.workload, args.preset, args.steps, args.data_dir, CLOCKS[args.clock]))
    b, h = statistics.median(bare), statistics.median(harness)
    # each harness run against the bare run just before it, so slow drift of a shared machine cancels
    ratios = sorted(hi / bi for bi, hi in zip(bare, harness))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"{args.workload} ({args.preset}), {args.steps} steps, median of {args.repeats}, {args.clock} clock:")
    print(f"  bare loop      {b:8.3f} s  ({1e3 * b / args.steps:.3f} ms/step)")
    print(f"  timetrial      {h:8.3f} s  ({1e3 * h / args.steps:.3f} ms/step)")
    print(f"  overhead ratio {statistics.median(ratios):8.3f}  (median of paired runs; quartiles "
          f"{quartiles[0]:.3f}-{quartiles[2]:.3f}; goal <= 1.02)")

if __name__ == "__main__":
    main()
