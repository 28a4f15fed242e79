"""What every image-classification workload shares: data loading, the augmented training
stream, softmax cross-entropy and evaluation. The ResNet and ViT families add a model."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from harness.core.precision import fp32_loss_input
from harness.core.results import atomic_write_json
from harness.core.spec import ExampleCounts, ForwardPassMode, LossType, Workload
from workloads.feeding import EpochOrder
from workloads.images import data

# Per dataset: its loader, the image shape (channels, height, width), the padding of the random
# crop and whether a horizontal flip keeps the label (true for CIFAR's objects). MNIST-1D is not
# augmented: its generator already draws a fresh translation, scale, shear and noise per example.
DATASETS = {
    "cifar10": {"load": data.load_cifar10, "shape": (3, 32, 32), "padding": 4, "flip": True},
    # the paper's size: 5,000 examples, 4,000 train / 1,000 validation
    "mnist1d_5k": {"load": lambda data_dir: data.load_mnist1d(data_dir, 5_000, 4_000),
                   "shape": (1, 1, 40), "padding": 0, "flip": False},
    "mnist1d_50k": {"load": lambda data_dir: data.load_mnist1d(data_dir, 50_000, 45_000),
                    "shape": (1, 1, 40), "padding": 0, "flip": False},
}

DATA_DESCRIPTION = ("tiny: MNIST-1D as in its paper, generated offline (4,000 train / 1,000 validation signals "
                    "of length 40); cpu: MNIST-1D generated the same way, 45,000 train / 5,000 validation; "
                    "full: real, CIFAR-10 python batches (50k train / 10k test as validation; "
                    "python scripts/prepare_data.py cifar10 --data-dir DIR)")

#: the linear model of `trivial_scores` is fitted on at most this many training pixels (all of
#: MNIST-1D; the first 6,510 CIFAR-10 images)
TRIVIAL_MAX_VALUES = 20_000_000

EVAL_BATCH_SIZE = 1024
TRAIN_EVAL_SIZE = 2_000


@contextlib.contextmanager
def batch_norm_statistics_frozen(model: torch.nn.Module, frozen: bool):
    """Batch statistics still normalise the batch, but running averages stay put (AlgoPerf's
    `update_batch_norm=False`): momentum 0 makes the running-average update the identity."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] if frozen else []
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


class ImageClassification(Workload):
    """Softmax classification of preloaded images; subclasses implement `build_model(in_channels,
    image_shape, n_classes)` and choose the dataset through `sizes[preset].options["dataset"]`."""

    loss_type = LossType.SOFTMAX_CROSS_ENTROPY
    target_metric = "validation_accuracy"
    target_direction = "max"
    # 2: cpu moved from scikit-learn digits to MNIST-1D (tiny too), 1-D kernels and patches
    version = 2

    def build_model(self, in_channels: int, image_shape: tuple[int, int], n_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    @property
    def dataset(self) -> dict[str, Any]:
        name = self.size.options["dataset"]
        if name not in DATASETS:
            raise ValueError(f"workload {self.name!r}: unknown dataset {name!r}; valid: {sorted(DATASETS)}")
        return DATASETS[name]

    def data_available(self) -> bool:
        return self.size.options["dataset"] != "cifar10" or data.cifar10_available(self.data_dir)

    def write_random_data(self, data_dir: str) -> None:
        """CIFAR-10's format and size (50,000 training and 10,000 validation images) in random pixels."""
        if self.size.options["dataset"] != "cifar10":
            raise ValueError(f"{self.name} ({self.preset}): {self.size.options['dataset']} is made offline "
                             "and needs no stand-in")
        data.write_random_cifar10(data_dir, n_train=50_000, n_validation=10_000)

    def prepare_data(self) -> None:
        arrays = self.dataset["load"](self.data_dir)
        if arrays.train_images.shape[1:] != self.dataset["shape"]:
            raise ValueError(f"{self.size.options['dataset']}: images of shape {arrays.train_images.shape[1:]}, "
                             f"expected {self.dataset['shape']}")
        train = arrays.train_images.astype(np.float32)
        mean, std = train.mean(axis=(0, 2, 3)), train.std(axis=(0, 2, 3))
        self.n_classes = arrays.n_classes
        self.train_images = data.to_normalized_tensor(arrays.train_images, mean, std, self.device)
        self.train_labels = torch.from_numpy(arrays.train_labels).to(self.device)
        self.validation_images = data.to_normalized_tensor(arrays.validation_images, mean, std, self.device)
        self.validation_labels = torch.from_numpy(arrays.validation_labels).to(self.device)
        # The train metrics use a fixed subset (the first examples) as large as the validation split, at
        # most TRAIN_EVAL_SIZE: they only show over- or underfitting, and evaluating costs steps' time.
        n_subset = min(len(arrays.validation_labels), len(arrays.train_labels), TRAIN_EVAL_SIZE)
        self.train_eval_images, self.train_eval_labels = self.train_images[:n_subset], self.train_labels[:n_subset]

    def init_model_fn(self, rng: int) -> tuple[torch.nn.Module, Any]:
        torch.manual_seed(rng)
        _, channels, height, width = self.train_images.shape
        model = self.build_model(channels, (height, width), self.n_classes).to(self.device)
        self._param_shapes = {name: p.shape for name, p in model.named_parameters()}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        training = mode == ForwardPassMode.TRAIN
        params.train(training)
        with batch_norm_statistics_frozen(params, training and not update_batch_norm), self.autocast():
            logits = self.logits(params, augmented_and_preprocessed_input_batch["inputs"], dropout_rate or 0.0)
        return logits, model_state

    def logits(self, model: torch.nn.Module, inputs: torch.Tensor, dropout_rate: float) -> torch.Tensor:
        """The model's output; a model with dropout takes the rate (AlgoPerf's ResNet has none)."""
        return model(inputs)

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        per_example = F.cross_entropy(fp32_loss_input(logits_batch), label_batch, reduction="none",
                                      label_smoothing=label_smoothing)
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.tensor(float(per_example.shape[0]), device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Epochs are seeded permutations, read as one endless sequence (so batch_size may exceed
        the training set); the crop/flip of step s draws from a generator seeded by (seed, s)."""
        order = EpochOrder(len(self.train_labels), seed, self.device)
        step = start_step
        while True:
            index = order.take(step * batch_size, (step + 1) * batch_size)
            images = self.train_images[index]
            if self.dataset["padding"] or self.dataset["flip"]:
                images = data.random_crop_flip(images, data.step_generator(seed, step),
                                               self.dataset["padding"], self.dataset["flip"])
            yield {"inputs": images, "targets": self.train_labels[index]}
            step += 1

    @torch.no_grad()
    def eval_model(self, model: torch.nn.Module, model_state: Any) -> dict[str, float]:
        metrics = {}
        for split, images, labels in (("train", self.train_eval_images, self.train_eval_labels),
                                      ("validation", self.validation_images, self.validation_labels)):
            loss_sum, correct = 0.0, 0
            for start in range(0, len(labels), EVAL_BATCH_SIZE):
                batch = {"inputs": images[start:start + EVAL_BATCH_SIZE]}
                logits, _ = self.model_fn(model, batch, model_state, ForwardPassMode.EVAL, None, False)
                targets = labels[start:start + EVAL_BATCH_SIZE]
                loss_sum += float(self.loss_fn(targets, logits)["summed"])
                correct += int((logits.argmax(dim=1) == targets).sum())
            metrics[f"{split}_loss"] = loss_sum / len(labels)
            metrics[f"{split}_accuracy"] = correct / len(labels)
            metrics[f"{split}_error"] = 1.0 - correct / len(labels)
        return metrics

    def example_counts(self) -> ExampleCounts:
        if not hasattr(self, "train_labels"):
            raise RuntimeError("example counts are known only after prepare_data")
        return ExampleCounts(train=len(self.train_labels), eval_train=len(self.train_eval_labels),
                             validation=len(self.validation_labels))

    @property
    def eval_batch_size(self) -> int:
        return EVAL_BATCH_SIZE

    def trivial_scores(self) -> dict[str, float]:
        """Validation accuracy of the majority class and of a linear model (multinomial logistic
        regression on the standardised pixels, scikit-learn's lbfgs); cached as JSON under
        `<data_dir>/trivial_scores/<dataset>.json` (MNIST-1D: ~3 s to fit; CIFAR-10: about a minute)."""
        if not hasattr(self, "train_labels"):
            raise RuntimeError("trivial_scores are known only after prepare_data")
        name = self.size.options["dataset"]
        path = Path(self.data_dir or "data") / "trivial_scores" / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        scores = trivial_model_scores(self.dataset["load"](self.data_dir))  # the raw arrays, read again
        atomic_write_json(path, scores)
        return scores


def trivial_model_scores(arrays: data.ImageArrays, max_values: int = TRIVIAL_MAX_VALUES) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    n_train = min(len(arrays.train_labels), max_values // int(np.prod(arrays.train_images.shape[1:])))
    train_x = arrays.train_images[:n_train].reshape(n_train, -1)
    train_y = arrays.train_labels[:n_train]
    validation_x = arrays.validation_images.reshape(len(arrays.validation_labels), -1)
    majority = np.bincount(train_y, minlength=arrays.n_classes).argmax()
    scaler = StandardScaler().fit(train_x.astype(np.float64))
    # one BLAS thread: on a busy 2-core machine, two threads make the lbfgs fit ~20x slower (58 s vs 3 s)
    with threadpool_limits(1):
        linear = LogisticRegression(max_iter=1000).fit(scaler.transform(train_x.astype(np.float64)), train_y)
    subset = f", first {len(train_y):,} training images" if len(train_y) < len(arrays.train_labels) else ""
    return {
        "majority class": float(np.mean(arrays.validation_labels == majority)),
        f"linear (logistic regression on pixels{subset})":
            float(linear.score(scaler.transform(validation_x.astype(np.float64)), arrays.validation_labels)),
    }


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
