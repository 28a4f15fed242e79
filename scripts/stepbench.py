"""What the step benchmarks share (bench_data.py, bench_mfu.py, device_check.sh): a workload ready to
train under its precision policy (with its real data, or random stand-in data of the real shapes),
timed training steps, and this device's matmul peak, each measured the way the runner measures.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.core import precision, registry  # noqa: E402
from harness.core.closure import TrainingClosure  # noqa: E402
from harness.core.runner import Clock  # noqa: E402
from harness.core.spec import Hyperparameters, Workload  # noqa: E402


def ready_workload(name: str, preset: str, data_dir: str, device: torch.device, random_data: bool = False,
                   precision_override: str | None = None, compile_override: bool | None = None) -> Workload | None:
    """The workload with its data prepared and its precision policy (with the overrides) in force, as the
    runner would train it; None when its data is absent and `random_data` is off. With `random_data`,
    absent data is first written as random data of the real shapes into `data_dir`."""
    workload = registry.make_workload(name, preset, data_dir, str(device))
    if not workload.data_available():
        if not random_data:
            return None
        print(f"{name} ({preset}): writing random stand-in data into {data_dir}", file=sys.stderr, flush=True)
        workload.write_random_data(data_dir)
    precision.apply(workload, precision.resolve(workload, precision_override, compile_override))
    workload.prepare_data()
    return workload


@dataclasses.dataclass
class StepTimes:
    batch_size: int
    targets_per_step: int     # what a step predicts: tokens (gpt), images, click rows
    first_step_s: float       # the first step alone: compilation, allocation
    data_s: float             # medians over the measured steps
    step_s: float
    peak_memory_bytes: int | None  # CUDA only: the model, its optimizer state and the step's activations


def time_steps(workload: Workload, model: torch.nn.Module, model_state: object, steps: int, warmup: int,
               batch_size: int | None = None, between: Callable[[], None] = lambda: None) -> StepTimes:
    """`next(train_batches)` (data time) and one forward + backward + AdamW step (step time) of `model`
    (from `workload.init_model_fn`; compiled here when the policy says so), each on the runner's clock
    (which waits for the device), over `warmup` unmeasured and `steps` measured steps; `between()` runs
    after every measured step, off the clock."""
    batch_size = batch_size or workload.size.batch_size
    model = precision.prepare_model(model, workload.policy)
    # multi-tensor AdamW: the fastest of torch's three on gpt2's cpu step (docs/accelerators.md), so the step
    # is the model's as far as an optimizer allows
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    batches = workload.train_batches(batch_size, seed=0)
    clock = Clock(workload.synchronize)
    cuda = workload.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(workload.device)
    data_times, step_times = [], []
    for _ in range(warmup + steps):
        start = clock.now()
        batch = next(batches)
        fetched = clock.now()
        closure = TrainingClosure(workload, model, model_state, batch, None, Hyperparameters())
        optimizer.step(closure)
        model_state = closure.model_state
        done = clock.now()
        data_times.append(fetched - start)
        step_times.append(done - fetched)
        if len(step_times) > warmup:
            between()
    measured = slice(warmup, None) if steps else slice(None)
    return StepTimes(batch_size=batch_size, targets_per_step=batch["targets"].numel(), first_step_s=step_times[0],
                     data_s=statistics.median(data_times[measured]), step_s=statistics.median(step_times[measured]),
                     peak_memory_bytes=torch.cuda.max_memory_allocated(workload.device) if cuda else None)


#: per device type: the size n of the n x n by n x n matmul that reaches its peak
PEAK_MATMUL_N = {"cpu": 2048, "cuda": 8192}


class MatmulPeak:
    """FLOP/s of a large square matmul in `dtype` on `device`, with the threads (and, on CUDA, the TF32
    flags) in force when sampled: `sample()` times one product; `flops` is the median of the samples.
    Sampled between the training steps it is compared with, so both see the same machine load."""

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32):
        self.n = PEAK_MATMUL_N[device.type]
        self.a, self.b = (torch.randn(self.n, self.n, device=device, dtype=dtype) for _ in range(2))
        self.synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.samples: list[float] = []
        self.a @ self.b  # warm-up: the first product allocates and picks its kernel

    def sample(self) -> None:
        self.synchronize()
        start = time.perf_counter()
        self.a @ self.b
        self.synchronize()
        self.samples.append(2 * self.n**3 / (time.perf_counter() - start))

    @property
    def flops(self) -> float:
        return statistics.median(self.samples)
