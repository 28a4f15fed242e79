"""The numeric precision and compilation a trial trains with: fixed by the workload per preset and
device (a submission cannot choose it), applied by the runner and recorded in every result.

- TF32 matmuls and convolutions on CUDA for every workload, as AlgoPerf runs on its A100s (and
  nanoGPT on any Ampere GPU); never on CPU, whose fp32 kernels have no TF32 mode.
- bf16 autocast of the forward pass where a workload's preset lists it (`bf16_presets`: the `full`
  presets of gpt2 and vit), on CUDA only: CPUs without bf16 matrix units run it slower than fp32.
  Losses stay fp32 (each workload's `loss_fn` casts the logits), as mixed-precision training does.
- `torch.compile` of the model where a workload's preset lists it (`compile_presets`), i.e. where it
  was measured to pay off (docs/accelerators.md). Compilation happens on the first training step,
  so it is counted on the clock, as AlgoPerf counts it.

On CPU the `tiny` and `cpu` presets train in fp32, eagerly, by default: the committed targets and reference
step times were measured that way. A trial can override the precision and compilation
(`precision=bf16`, `compile=true`: benchmarks, tests); the record says what ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import torch

#: torch.compile's backend: TorchInductor, which generates C++/OpenMP kernels on CPU (it needs a C++
#: compiler, g++ here) and Triton kernels on CUDA
COMPILE_BACKEND = "inductor"
#: forward-pass precisions: the dtype autocast runs matmuls in (fp32: no autocast)
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}
PRECISIONS = tuple(AUTOCAST_DTYPES)


@dataclasses.dataclass(frozen=True)
class PrecisionPolicy:
    precision: str = "fp32"
    tf32: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in AUTOCAST_DTYPES:
            raise ValueError(f"precision={self.precision!r}; valid: {list(PRECISIONS)}")

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The context forward passes run in: bf16 autocast, or nothing at all for fp32 (not a disabled
        autocast, so fp32 runs the very code it ran before policies existed)."""
        dtype = AUTOCAST_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def record(self) -> dict[str, Any]:
        """What a result records: `precision`, `tf32`, `compiled`."""
        return {"precision": self.precision, "tf32": self.tf32, "compiled": self.compile}

    def describe(self) -> str:
        """One line for `timetrial describe`."""
        return (f"{self.precision} forward passes" + (" (bf16 autocast, fp32 loss)" if self.precision != "fp32" else "")
                + f"; TF32 matmuls {'on' if self.tf32 else 'off'}; torch.compile {'on' if self.compile else 'off'}")


#: what every framework but PyTorch records: its own default numerics, no policy applied
FRAMEWORK_DEFAULT = PrecisionPolicy()


def default_policy(workload) -> PrecisionPolicy:
    """The policy a workload fixes at its preset on its device (harness.core.spec.Workload's
    `bf16_presets` and `compile_presets`)."""
    if workload.framework != "pytorch":
        return FRAMEWORK_DEFAULT
    cuda = workload.device.type == "cuda"
    bf16 = cuda and workload.preset in workload.bf16_presets
    return PrecisionPolicy(precision="bf16" if bf16 else "fp32", tf32=cuda,
                           compile=workload.preset in workload.compile_presets)


def resolve(workload, precision: str | None = None, compile: bool | None = None) -> PrecisionPolicy:
    """The workload's policy with a trial's overrides (None keeps the workload's choice)."""
    policy = default_policy(workload)
    if precision is None and compile is None:
        return policy
    if workload.framework != "pytorch":
        raise ValueError(f"precision= and compile= apply to framework=pytorch only, not {workload.framework}; "
                         "leave them unset (null)")
    return dataclasses.replace(policy, precision=policy.precision if precision is None else precision,
                               compile=policy.compile if compile is None else bool(compile))


def apply(workload, policy: PrecisionPolicy) -> None:
    """Put the policy in force for the workload's trial: its forward passes read `workload.policy`;
    the TF32 flags are process-wide, so they are set on CUDA for every trial (CPU trials never touch them)."""
    workload.policy = policy
    if workload.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = policy.tf32
        torch.backends.cudnn.allow_tf32 = policy.tf32


def prepare_model(model: Any, policy: PrecisionPolicy) -> Any:
    """The model compiled in place when the policy says so (`nn.Module.compile`: parameter names, state
    dicts and checkpoints stay as they are); compilation itself waits for the first forward pass."""
    if policy.compile and isinstance(model, torch.nn.Module):
        model.compile(backend=COMPILE_BACKEND)
    return model


def fp32_loss_input(logits: torch.Tensor) -> torch.Tensor:
    """Logits as a loss should read them: bf16/fp16 (autocast outputs) cast up to fp32, fp32 and fp64 as they are."""
    return logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits
