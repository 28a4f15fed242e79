"""Image workloads (ResNet and ViT families): models, data loaders, augmentation, runner integration."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.core import registry
from harness.core.runner import TrialSpec, run_trial
from harness.core.spec import DataMissingError, ForwardPassMode
from workloads.images import data
from workloads.images.workload import ImageClassification, count_parameters

IMAGE_WORKLOADS = sorted(name for name, cls in registry.workload_classes().items()
                         if issubclass(cls, ImageClassification))


# `data_dir` (tests/conftest.py) is shared by the session: MNIST-1D is generated there once (about a
# second at `tiny`, ~15 s at `cpu`) and read from its cache afterwards.
def prepared(name: str, preset: str, data_dir: str):
    workload = registry.make_workload(name, preset, data_dir=data_dir)
    workload.prepare_data()
    return workload


def test_both_families_and_their_variants_are_registered():
    families = {registry.workload_class(name).family for name in IMAGE_WORKLOADS}
    assert families == {"resnet", "vit"}
    for base in ("resnet", "vit"):
        assert registry.variants_of(base), f"{base} has no variant"


@pytest.mark.parametrize("name", IMAGE_WORKLOADS)
@pytest.mark.parametrize("preset", ["tiny", "cpu", "full"])
def test_parameter_count_matches_documented_count(name, preset):
    workload = registry.make_workload(name, preset)
    in_channels, height, width = workload.dataset["shape"]
    model = workload.build_model(in_channels, (height, width), 10)
    assert count_parameters(model) == workload.param_counts[preset]
    # ...and the count is the one the workload module documents.
    assert f"{workload.param_counts[preset]:,}" in sys.modules[type(workload).__module__].__doc__


@pytest.mark.parametrize("name", IMAGE_WORKLOADS)
def test_one_train_step_and_one_eval_through_the_runner(name, tmp_path, data_dir):
    record = run_trial(TrialSpec(workload=name, submission="adamw", preset="tiny", max_steps=1,
                                 stop_at_target=False), tmp_path, data_dir=data_dir, device="cpu")
    assert record.status == "budget", record.traceback
    assert record.steps == 1 and record.evals == 1
    metrics = record.final_metrics
    for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "validation_error"):
        assert np.isfinite(metrics[key]), key
    # An untrained 10-class model sits near chance: loss about ln 10.
    assert 1.0 < metrics["validation_loss"] < 5.0


@pytest.mark.parametrize("name", IMAGE_WORKLOADS)
def test_loss_decreases_over_a_few_steps_on_real_data(name, data_dir):
    workload = prepared(name, "tiny", data_dir)
    model, model_state = workload.init_model_fn(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = workload.eval_model(model, model_state)["train_loss"]
    batches = workload.train_batches(64, seed=0)
    for _ in range(40):
        batch = next(batches)
        logits, model_state = workload.model_fn(model, batch, model_state, ForwardPassMode.TRAIN, None, True)
        out = workload.loss_fn(batch["targets"], logits)
        optimizer.zero_grad()
        (out["summed"] / out["n_valid_examples"]).backward()
        optimizer.step()
    after = workload.eval_model(model, model_state)["train_loss"]
    # ViTs start slowly (their zero-initialised head first learns the class prior): a 2% drop
    # in 40 steps is what the tiny ViTs manage; the ResNets drop by more than half.
    assert after < 0.98 * before, (before, after)


def test_training_stream_is_a_function_of_seed_and_step(data_dir):
    workload = prepared("resnet", "tiny", data_dir)
    stream = workload.train_batches(100, seed=3)
    batches = [next(stream) for _ in range(45)]  # 45 x 100 > 4,000 examples: crosses an epoch boundary
    resumed = workload.train_batches(100, seed=3, start_step=38)
    for step in range(38, 45):
        again = next(resumed)
        assert torch.equal(again["inputs"], batches[step]["inputs"])
        assert torch.equal(again["targets"], batches[step]["targets"])
    other_seed = next(workload.train_batches(100, seed=4))
    assert not torch.equal(other_seed["inputs"], batches[0]["inputs"])
    # Within an epoch no example repeats, so no class appears more often than in the training set.
    per_epoch = len(workload.train_labels) // 100
    seen = torch.bincount(torch.cat([b["targets"] for b in batches[:per_epoch]]), minlength=10)
    assert torch.all(seen <= torch.bincount(workload.train_labels, minlength=10))
    # MNIST-1D is not augmented: a batch is the training signals themselves, (N, 1, 1, 40).
    first = workload.train_batches(100, seed=3)
    batch = next(first)
    assert batch["inputs"].shape == (100, 1, 1, 40)
    assert any(torch.equal(batch["inputs"][0], image) for image in workload.train_images)


def test_batch_larger_than_the_training_set(data_dir):
    workload = prepared("vit", "tiny", data_dir)
    batch = next(workload.train_batches(9000, seed=0))
    assert batch["inputs"].shape == (9000, 1, 1, 40)
    # 9,000 examples hold two whole epochs of the 4,000, so every class at least twice its count.
    assert torch.all(torch.bincount(batch["targets"], minlength=10)
                     >= 2 * torch.bincount(workload.train_labels, minlength=10))


def test_mnist1d_is_generated_offline_reproducibly_and_cached(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D must be generated, never downloaded")

    monkeypatch.setattr(requests, "get", no_network)
    np.random.seed(123)
    expected_next = np.random.get_state()[1].copy()
    arrays = data.load_mnist1d(tmp_path, 600, 500)
    # The generator seeds numpy's global RNG; the loader gives the caller's state back.
    np.testing.assert_array_equal(np.random.get_state()[1], expected_next)
    assert arrays.train_images.shape == (500, 1, 1, 40) and arrays.validation_images.shape == (100, 1, 1, 40)
    assert arrays.train_images.dtype == np.float32 and arrays.train_labels.dtype == np.int64
    # 1/10 of the signals per class, shuffled; standardised over the whole set.
    labels = np.concatenate([arrays.train_labels, arrays.validation_labels])
    assert np.bincount(labels).tolist() == [60] * 10
    assert not np.array_equal(labels[:10], np.sort(labels[:10]))
    signals = np.concatenate([arrays.train_images, arrays.validation_images])
    assert abs(signals.mean()) < 1e-3 and abs(signals.std() - 1.0) < 1e-3
    # The cache is what a second load reads, and a fresh generation gives the same signals.
    cached = list((tmp_path / data.MNIST1D_DIR).glob("*.npz"))
    assert len(cached) == 1, cached
    again = data.load_mnist1d(tmp_path, 600, 500)
    np.testing.assert_array_equal(again.train_images, arrays.train_images)
    regenerated, regenerated_labels = data.generate_mnist1d(600)
    np.testing.assert_array_equal(regenerated.astype(np.float32), signals.reshape(600, 40))
    np.testing.assert_array_equal(regenerated_labels, labels)


@pytest.mark.parametrize("name", IMAGE_WORKLOADS)
def test_tiny_split_sizes_and_trivial_scores(name, data_dir):
    workload = prepared(name, "tiny", data_dir)
    assert workload.split_sizes() == {"train": 4000, "validation": 1000}  # the MNIST-1D paper's split
    scores = workload.trivial_scores()
    assert set(scores) == {"majority class", "linear (logistic regression on pixels)"}
    # The paper reports ~32% for logistic regression on its 4,000/1,000 split.
    assert 0.25 < scores["linear (logistic regression on pixels)"] < 0.40
    assert 0.05 < scores["majority class"] < 0.15


def test_random_crop_flip_shifts_and_mirrors_each_image():
    n = 8
    images = torch.arange(n * 3 * 4 * 4, dtype=torch.float32).reshape(n, 3, 4, 4) + 1
    out = data.random_crop_flip(images, torch.Generator().manual_seed(0), padding=1, flip=True)
    # Recompute the expected result the slow way, drawing the same random numbers in the same order.
    replay = torch.Generator().manual_seed(0)
    offsets = torch.randint(0, 3, (2, n), generator=replay)
    flips = torch.rand(n, generator=replay) < 0.5
    assert 0 < int(flips.sum()) < n and len(set(map(tuple, offsets.T.tolist()))) > 1, "seed exercises both branches"
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    for i in range(n):
        expected = padded[i, :, offsets[0, i]:offsets[0, i] + 4, offsets[1, i]:offsets[1, i] + 4]
        if flips[i]:
            expected = expected.flip(-1)
        assert torch.equal(out[i], expected)


def test_batch_norm_statistics_stay_put_when_update_batch_norm_is_false(data_dir):
    workload = prepared("resnet", "tiny", data_dir)
    model, state = workload.init_model_fn(0)
    batch = next(workload.train_batches(32, seed=0))
    running = model.bn1.running_mean.clone()
    workload.model_fn(model, batch, state, ForwardPassMode.TRAIN, None, update_batch_norm=False)
    assert torch.equal(model.bn1.running_mean, running)
    assert model.bn1.momentum == 0.1
    workload.model_fn(model, batch, state, ForwardPassMode.TRAIN, None, update_batch_norm=True)
    assert not torch.equal(model.bn1.running_mean, running)


def write_cifar10(root, n_per_batch: int = 6, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR-10's python batches in their on-disk format: pickled dicts of bytes keys."""
    rng = np.random.default_rng(seed)
    folder = root / data.CIFAR10_DIR
    folder.mkdir(parents=True)
    written = {}
    for name in (*data.CIFAR10_TRAIN_FILES, data.CIFAR10_TEST_FILE):
        images = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n_per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": images,
                         b"filenames": [b"x.png"] * n_per_batch}, f, protocol=2)
        written[name] = (images, labels)
    return written


def test_cifar10_loader_round_trips_the_pickle_format(tmp_path):
    written = write_cifar10(tmp_path)
    arrays = data.load_cifar10(tmp_path)
    train_images = np.concatenate([written[n][0] for n in data.CIFAR10_TRAIN_FILES]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(arrays.train_images, train_images)
    np.testing.assert_array_equal(arrays.train_labels, sum((written[n][1] for n in data.CIFAR10_TRAIN_FILES), []))
    np.testing.assert_array_equal(arrays.validation_images.reshape(-1, 3072), written["test_batch"][0])
    np.testing.assert_array_equal(arrays.validation_labels, written["test_batch"][1])
    # Channel-major planes: the first 1024 bytes of a row are the red plane.
    np.testing.assert_array_equal(arrays.train_images[0, 0].ravel(), written["data_batch_1"][0][0, :1024])


def test_full_preset_loads_cifar10_onto_the_device(tmp_path):
    write_cifar10(tmp_path, n_per_batch=4)
    workload = registry.make_workload("resnet", "full", data_dir=str(tmp_path))
    assert workload.data_available()
    workload.prepare_data()
    assert workload.train_images.shape == (20, 3, 32, 32)
    assert workload.validation_images.shape == (4, 3, 32, 32)
    batch = next(workload.train_batches(8, seed=0))
    assert batch["inputs"].shape == (8, 3, 32, 32) and batch["inputs"].dtype == torch.float32
    assert workload.split_sizes() == {"train": 20, "validation": 4}
    # A 2-D model on 32x32 RGB still builds and runs (the `full` path).
    model, _ = workload.init_model_fn(0)
    assert model(batch["inputs"]).shape == (8, 10)
    # Trivial models fit on the pixels and are cached under the data dir.
    scores = workload.trivial_scores()
    assert set(scores) == {"majority class", "linear (logistic regression on pixels)"}
    assert all(0.0 <= score <= 1.0 for score in scores.values())
    assert (tmp_path / "trivial_scores" / "cifar10.json").exists()


def test_missing_cifar10_names_the_prepare_command(tmp_path):
    workload = registry.make_workload("vit", "full", data_dir=str(tmp_path))
    assert not workload.data_available()
    with pytest.raises(DataMissingError, match=f"python scripts/prepare_data.py cifar10 --data-dir {tmp_path}"):
        workload.prepare_data()


def test_malformed_cifar10_batch_names_the_file_and_the_missing_key(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(ValueError, match=r"data_batch_1.*b'data'"):
        data.read_cifar10_batch(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_WORKLOADS)
def test_cpu_splits_are_large_and_trivial_models_far_below_the_target(name, data_dir):
    """Generates the 50,000 cpu signals once for the session (~15 s), then reads the cache."""
    workload = prepared(name, "cpu", data_dir)
    sizes = workload.split_sizes()
    assert sizes == {"train": 45_000, "validation": 5_000}
    assert 1 / sizes["validation"] <= 0.001  # one example moves the accuracy by at most 0.1%
    scores = workload.trivial_scores()
    assert set(scores) == {"majority class", "linear (logistic regression on pixels)"}
    assert max(scores.values()) < 0.4 < workload.target_value - 0.5, scores
    # The scores are cached beside the data and read back unchanged.
    assert (Path(data_dir) / "trivial_scores" / "mnist1d_50k.json").exists()
    assert workload.trivial_scores() == scores

