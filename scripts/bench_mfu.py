"""Model FLOP/s utilisation (MFU) of a training step, per workload and preset, on the present device.

    python scripts/bench_mfu.py [--presets cpu] [--workloads gpt2 vit resnet dlrm_small] [--steps 20]
                                [--threads N] [--precision fp32|bf16] [--compile policy|off|on|both]
                                [--device auto] [--data-dir data] [--random-data]

Per workload and preset: the model FLOPs of one training step, counted analytically from the model's
shapes (`Workload.train_step_flops`: nanoGPT's 6N + 12LCT per token for gpt2, 6 per multiply-add of the
Linear/convolution layers plus attention or DLRM's interaction elsewhere; harness/core/flops.py), the
median time of a forward + backward + AdamW step under the workload's precision policy, and the achieved
FLOP/s beside the peak matmul FLOP/s of this device measured in the same run (the median of a large
square matmul in the policy's dtype, with the same threads, timed after each measured step, so both see
the same machine load), with their ratio, the MFU. `--compile both` times the eager and the compiled model side by side and says how many
steps the compilation needs to pay for itself. Threads: the preset's (cpu: 1) unless --threads.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

import stepbench
from harness.core import precision
from harness.core.presets import apply_threads
from harness.core.runner import resolve_device

DEFAULT_WORKLOADS = ["gpt2", "vit", "resnet", "dlrm_small"]
COMPILE_CHOICES = {"policy": (None,), "off": (False,), "on": (True,), "both": (False, True)}


def measure(name: str, preset: str, args, device: torch.device, compile_override: bool | None) -> dict | None:
    """One row: step times, the step's FLOPs and the device's matmul peak sampled between the steps."""
    workload = stepbench.ready_workload(name, preset, args.data_dir, device, args.random_data,
                                        args.precision, compile_override)
    if workload is None:
        return None
    model, model_state = workload.init_model_fn(0)
    flops = workload.train_step_flops(model, model_state, workload.size.batch_size)  # hooks on the eager model
    peak = stepbench.MatmulPeak(device, precision.AUTOCAST_DTYPES[workload.policy.precision] or torch.float32)
    times = stepbench.time_steps(workload, model, model_state, args.steps, args.warmup, between=peak.sample)
    return {"workload": name, "preset": preset, "policy": workload.policy, "times": times, "flops": flops,
            "achieved": flops / times.step_s, "peak": peak.flops, "step_hint": workload.step_hint}


def print_row(row: dict, unit: float) -> None:
    times, policy = row["times"], row["policy"]
    memory = "" if times.peak_memory_bytes is None else f" {times.peak_memory_bytes / 2**30:8.2f}"
    print(f"{row['workload']:12s} {row['preset']:5s} {policy.precision:>5s} {'on' if policy.compile else 'off':>7s} "
          f"{times.batch_size:7d} {1e3 * times.step_s:10.2f} {times.first_step_s:9.2f} "
          f"{times.targets_per_step / times.step_s:12.4g} {row['achieved'] / unit:10.4g} {row['peak'] / unit:10.4g} "
          f"{row['achieved'] / row['peak']:6.3f}{memory}", flush=True)


def print_payoff(eager: dict, compiled: dict) -> None:
    """How many steps a compiled model needs to win back its compilation (the extra first-step time; near 0
    when inductor's on-disk cache already holds the kernels)."""
    saving = eager["times"].step_s - compiled["times"].step_s
    cost = max(compiled["times"].first_step_s - eager["times"].first_step_s, 0.0)
    if saving <= 0:
        verdict = f"compiled steps are {-1e3 * saving:.2f} ms slower: never pays off"
    else:
        steps = cost / saving
        verdict = (f"{1e3 * saving:.2f} ms saved a step, {cost:.1f} s to compile: pays off after {steps:,.0f} steps "
                   f"({'within' if steps < eager['step_hint'] else 'beyond'} step_hint {eager['step_hint']:,})")
    print(f"{'':12s} compile: eager/compiled step {eager['times'].step_s / compiled['times'].step_s:.2f}x; {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["cpu"], choices=["tiny", "cpu", "full"])
    parser.add_argument("--workloads", nargs="*", default=DEFAULT_WORKLOADS)
    parser.add_argument("--steps", type=int, default=20, help="measured steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured first steps (compilation happens here)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the preset's)")
    parser.add_argument("--precision", choices=precision.PRECISIONS, help="override the workload's policy")
    parser.add_argument("--compile", choices=sorted(COMPILE_CHOICES), default="policy")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--random-data", action="store_true",
                        help="write random data of the real shapes into --data-dir where a dataset is absent")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    unit, unit_name = (1e12, "TFLOP/s") if device.type == "cuda" else (1e9, "GFLOP/s")
    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; "
          f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    print(f"{'workload':12s} {'preset':5s} {'prec':>5s} {'compile':>7s} {'batch':>7s} {'step ms':>10s} "
          f"{'first s':>9s} {'targets/s':>12s} {'model ' + unit_name[0]:>10s} {'peak ' + unit_name[0]:>10s} "
          f"{'MFU':>6s}{' mem GiB' if device.type == 'cuda' else ''}   ({unit_name}; targets: tokens, images, rows)")
    skipped = []
    for preset in args.presets:
        threads = apply_threads(preset)
        if args.threads:
            torch.set_num_threads(args.threads)
            threads = args.threads
        print(f"-- preset {preset}: {threads} torch thread(s)", flush=True)
        for name in args.workloads:
            rows = []
            for choice in COMPILE_CHOICES[args.compile]:  # each row printed once measured: a time limit keeps it
                row = measure(name, preset, args, device, choice)
                if row is None:
                    skipped.append(f"{name} ({preset})")
                    break
                print_row(row, unit)
                rows.append(row)
            if len(rows) == 2:
                print_payoff(*rows)
    if skipped:
        print(f"skipped (data not prepared; --random-data writes stand-ins): {', '.join(skipped)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
