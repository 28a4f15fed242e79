"""What the workloads' input pipelines share to keep an accelerator fed: host-to-device copies that do
not wait, and the seeded epoch order of a training split.

Splits small enough are held on the device whole (MNIST-1D, CIFAR-10, the character-level text, the
SYNTHETIC click logs), so a batch is a gather of tensors already there. Splits too large for that (web
text token files, Criteo 1TB) are read from memory-mapped files on the host each step, copied through
pinned memory without blocking the host (`to_device`).
"""

from __future__ import annotations

import torch

#: what random data written in a real dataset's place (`Workload.write_random_data`) says about itself
RANDOM_STAND_IN = "RANDOM stand-in of the real shapes (scripts/bench_data.py --random-data): never for results"


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device`. To a GPU: through pinned (page-locked) memory and without waiting, so
    the host goes on queueing work while the copy runs; the copy is ordered before the kernels queued
    after it on the same stream, and the pinned block is not reused before it completes (PyTorch's
    caching host allocator). To the CPU: the tensor itself."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class EpochOrder:
    """Seeded permutations of range(n), one per epoch, read as one endless sequence: position p is
    `permutation(p // n)[p % n]`, so a batch may span epochs (and exceed n). The same (seed, position)
    always gives the same item: a resumed trial continues exactly."""

    def __init__(self, n: int, seed: int, device: torch.device | str = "cpu"):
        self.n, self.seed, self.device = n, seed, device
        self._permutations: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            if len(self._permutations) > 2:  # a batch spans at most a few epochs; keep memory flat
                self._permutations.clear()
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutations[epoch] = torch.randperm(self.n, generator=generator).to(self.device)
        return self._permutations[epoch]

    def take(self, first: int, last: int) -> torch.Tensor:
        """The items at positions [first, last) of the sequence."""
        n = self.n
        return torch.cat([self.permutation(epoch)[max(first - epoch * n, 0):min(last - epoch * n, n)]
                          for epoch in range(first // n, (last - 1) // n + 1)])
