"""Image datasets (CIFAR-10 pickle batches, the procedurally generated MNIST-1D) and on-device
augmentation.

Everything is preloaded to the device as float tensors normalised per channel with training
statistics, so a training batch is an index gather (plus a crop/flip) on tensors already in memory.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import pickle
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harness.core.results import atomic_write
from harness.core.spec import DataMissingError
from workloads.feeding import RANDOM_STAND_IN, to_device

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
MNIST1D_DIR = "mnist1d"


@dataclasses.dataclass(frozen=True)
class ImageArrays:
    """Images (N, C, H, W; uint8 pixels or float signals) and int64 labels of a train and a
    validation split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    n_classes: int


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: a pickled dict with b'data' (N x 3072 uint8, channel-major
    32x32 planes) and b'labels' (N ints). Returns images (N, 3, 32, 32) uint8 and labels int64."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    missing = [key for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise ValueError(f"{path}: not a CIFAR-10 python batch; missing keys {missing}, has {sorted(batch)}")
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' has shape {images.shape}; expected (N, 3072)")
    return images.reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"], dtype=np.int64)


def cifar10_available(data_dir: str | Path | None) -> bool:
    root = Path(data_dir or "data") / CIFAR10_DIR
    return all((root / name).exists() for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE))


def write_random_cifar10(data_dir: str | Path, n_train: int, n_validation: int, seed: int = 0) -> None:
    """CIFAR-10 python batches of uniformly random pixels and labels (the real format: five training
    batches and the test batch), for throughput checks on a machine without the real data."""
    root = Path(data_dir) / CIFAR10_DIR
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = {name: len(part) for name, part in zip(CIFAR10_TRAIN_FILES, np.array_split(np.arange(n_train), 5))}
    for name, n in {**sizes, CIFAR10_TEST_FILE: n_validation}.items():
        batch = {b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": RANDOM_STAND_IN.encode()}
        with open(root / name, "wb") as handle:
            pickle.dump(batch, handle)


def load_cifar10(data_dir: str | Path | None) -> ImageArrays:
    """CIFAR-10 from `<data_dir>/cifar-10-batches-py/`: the 50k training batches and the 10k
    test batch as the validation split (as in the CIFAR-10 literature and AlgoPerf's cifar)."""
    data_dir = Path(data_dir or "data")
    root = data_dir / CIFAR10_DIR
    if not cifar10_available(data_dir):
        missing = [n for n in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not (root / n).exists()]
        raise DataMissingError(
            f"CIFAR-10 is missing under {root} (absent: {', '.join(missing)}); prepare it with: "
            f"python scripts/prepare_data.py cifar10 --data-dir {data_dir}"
        )
    train = [read_cifar10_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    validation_images, validation_labels = read_cifar10_batch(root / CIFAR10_TEST_FILE)
    return ImageArrays(np.concatenate([images for images, _ in train]),
                       np.concatenate([labels for _, labels in train]),
                       validation_images, validation_labels, n_classes=10)


def load_mnist1d(data_dir: str | Path | None, num_samples: int, n_train: int) -> ImageArrays:
    """MNIST-1D (Greydanus 2020, "Scaling down deep learning"): 10 one-dimensional digit templates
    (length 12) randomly padded, dilated, scaled, circularly translated, overlaid with correlated
    and i.i.d. noise, sheared and resampled to 40 points. Made by the `mnist1d` package's offline
    generator with the paper's default arguments (seed 42) except the sample count and the split
    (the paper's own set is 5,000 = 4,000 train / 1,000 test); never downloaded. Each signal is a
    1 x 40 single-channel image. Generating takes ~0.3 ms per example, so the arrays are cached as
    `<data_dir>/mnist1d/<name>.npz`, named by the generator's arguments and version."""
    version = importlib.metadata.version("mnist1d")
    path = Path(data_dir or "data") / MNIST1D_DIR / f"mnist1d-{num_samples}-train{n_train}-seed42-v{version}.npz"
    if not path.exists():
        print(f"generating MNIST-1D ({num_samples:,} signals, ~{num_samples * 0.3e-3:.0f} s once; cached in {path})",
              flush=True)
        x, y = generate_mnist1d(num_samples)
        # atomic: concurrent trials never read half a file
        atomic_write(path, lambda handle: np.savez(handle, x=x.astype(np.float32), y=y.astype(np.int64)), binary=True)
    with np.load(path) as arrays:
        x, y = arrays["x"], arrays["y"]
    images = x[:, None, None, :]  # (N, 1 channel, height 1, width 40)
    labels = y
    return ImageArrays(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], n_classes=10)


def generate_mnist1d(num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """All `num_samples` signals (shuffled, 1/10 per class) and labels of the generator; it seeds
    the global numpy and python RNGs, so their states are restored afterwards."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = num_samples, 1.0
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        dataset = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return dataset["x"], dataset["y"]


def to_normalized_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy((images.astype(np.float32) - mean[:, None, None]) / std[:, None, None]).to(device)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator owned by one (seed, step): batches do not depend on what ran before."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int, flip: bool) -> torch.Tensor:
    """Per-example random crop of the zero-padded image (the standard CIFAR augmentation:
    pad 4, crop 32) and, when `flip`, a horizontal flip with probability 1/2; one gather on device. The
    draws come from the CPU generator, so a GPU trial crops exactly as a CPU trial does."""
    n, _, height, width = images.shape
    offsets = to_device(torch.randint(0, 2 * padding + 1, (2, n), generator=generator), images.device)
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[0][:, None] + torch.arange(height, device=images.device)
    cols = offsets[1][:, None] + torch.arange(width, device=images.device)
    if flip:
        flipped = to_device(torch.rand(n, generator=generator) < 0.5, images.device)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    batch_index = torch.arange(n, device=images.device)[:, None, None, None]
    channel_index = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]
