"""Criteo click logs: the TSV format, its conversion to flat arrays, and a SYNTHETIC generator.

The TSV format (Criteo Kaggle Display Advertising Challenge `train.txt`, Criteo 1TB `day_N`):
one example per line, 40 tab-separated columns: the click label (0/1), 13 integer count features
(I1..I13, may be negative or missing) and 26 categorical features (C1..C26, 32-bit hashes written as
8 hex digits, may be missing). A missing value is an empty field.

Conversion (`convert_tsv`, through `write_arrays`) writes, per split, flat little-endian arrays that the
workload memory-maps: `<split>_dense.f32` (n x 13, log(1 + max(x, 0)) with missing -> 0, as AlgoPerf's criteo1tb pipeline),
`<split>_cat.u32` (n x 26 raw hashes, missing -> 0) and `<split>_label.u8`, plus `meta.json`
with the row counts. The workload maps hashes into its (preset-sized) embedding table.

The generator (`generate_synthetic`) draws SYNTHETIC click logs from a seeded planted model (see its
docstring) as the frames that format parses to, and `prepare_synthetic` writes their arrays; it is what
the offline presets train on.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from scipy import special

from harness.core.results import atomic_write_json
from harness.core.spec import DataMissingError
from workloads.feeding import RANDOM_STAND_IN

N_DENSE, N_CATEGORICAL = 13, 26
COLUMNS = ["label"] + [f"I{i}" for i in range(1, N_DENSE + 1)] + [f"C{i}" for i in range(1, N_CATEGORICAL + 1)]
DENSE_COLUMNS, CATEGORICAL_COLUMNS = COLUMNS[1:1 + N_DENSE], COLUMNS[1 + N_DENSE:]
SPLITS = ("train", "val")
#: datasets whose training split is far too large for memory: streamed from the memory-mapped arrays
STREAMED = frozenset({"criteo-1tb"})
ARRAYS = {"dense": (np.float32, N_DENSE), "cat": (np.uint32, N_CATEGORICAL), "label": (np.uint8, 1)}
SUFFIX = {np.float32: "f32", np.uint32: "u32", np.uint8: "u8"}


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """One SYNTHETIC dataset: its sizes and the shape of its planted model (`generate_synthetic`)."""

    train_rows: int
    val_rows: int
    seed: int = 0
    max_cardinality: int = 20_000  # column cardinalities span 3..max_cardinality (geometrically)
    interacting_columns: int = 8  # the first k columns' latent vectors interact pairwise
    latent_std: float = 0.35
    effect_std: float = 0.5

    def planted_model(self) -> dict:
        """What meta.json records, so a change of the spec regenerates the data."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("train_rows", "val_rows")}


#: SYNTHETIC datasets the generator writes
#: criteo-synthetic (cpu): 2M training rows, so 4,000 steps of 512 see each row about once (with 600k rows
#: the model overfits after ~2,000 steps); cardinalities up to 2,000 (sum 8,709 values, few collisions in
#: the 32,768-row table) and stronger interactions (latent std 0.5), so a model without the dot-product
#: interactions stays far above the planted model's loss
SYNTHETIC = {"criteo-synthetic": SyntheticSpec(2_000_000, 60_000, max_cardinality=2_000, latent_std=0.5),
             "criteo-synthetic-tiny": SyntheticSpec(6_000, 2_000)}


def read_tsv(path: Path, chunk_rows: int | None = None, start: int = 0,
             stop: int | None = None) -> Iterator[pd.DataFrame] | pd.DataFrame:
    """Parse rows [start, stop) of a Criteo TSV file (plain or .gz): integers as float with NaN for
    missing values, categorical hashes as strings with NaN for missing values."""
    dtypes = {"label": np.int64, **{c: np.float64 for c in DENSE_COLUMNS}, **{c: str for c in CATEGORICAL_COLUMNS}}
    return pd.read_csv(path, sep="\t", header=None, names=COLUMNS, dtype=dtypes, chunksize=chunk_rows,
                       keep_default_na=False, na_values={c: [""] for c in COLUMNS}, compression="infer",
                       skiprows=start or None, nrows=None if stop is None else stop - start)


def features(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The arrays of one parsed chunk: transformed dense features, raw hashes, labels."""
    dense = frame[DENSE_COLUMNS].to_numpy(np.float64)
    dense = np.log1p(np.clip(np.nan_to_num(dense, nan=0.0), 0.0, None)).astype(np.float32)
    hashes = frame[CATEGORICAL_COLUMNS].fillna("0").to_numpy().ravel()
    cat = np.fromiter((int(h, 16) for h in hashes), dtype=np.uint32, count=len(hashes)).reshape(-1, N_CATEGORICAL)
    return {"dense": dense, "cat": cat, "label": frame["label"].to_numpy(np.uint8)}


def write_arrays(chunks: Mapping[str, Iterable[pd.DataFrame]], out_dir: Path, description: str) -> dict:
    """Write each split's frames (in the Criteo columns, as `read_tsv` parses them) as the flat arrays the
    workload reads; returns meta."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for split, frames in chunks.items():
        handles = {k: open(out_dir / f".{split}_{k}.{SUFFIX[dtype]}.tmp", "wb") for k, (dtype, _) in ARRAYS.items()}
        rows[split] = 0
        try:
            for frame in frames:
                for key, array in features(frame).items():
                    array.tofile(handles[key])
                rows[split] += len(frame)
        finally:
            for handle in handles.values():
                handle.close()
        for key, (dtype, _) in ARRAYS.items():
            name = f"{split}_{key}.{SUFFIX[dtype]}"
            (out_dir / f".{name}.tmp").replace(out_dir / name)
    meta = {"rows": rows, "description": description, "dense_transform": "log(1 + max(x, 0)), missing -> 0",
            "categorical": "32-bit hash from 8 hex digits, missing -> 0"}
    atomic_write_json(out_dir / "meta.json", meta)
    return meta


def convert_tsv(sources: dict[str, Iterable[tuple[Path, int, int | None]]], out_dir: Path, description: str,
                chunk_rows: int = 500_000) -> dict:
    """Convert TSV files into the flat arrays the workload reads; returns meta. `sources` maps each
    split to (file, first row, end row or None) parts, so one file can feed both splits."""
    from tqdm import tqdm

    def chunks(split: str, parts: Iterable[tuple[Path, int, int | None]]) -> Iterator[pd.DataFrame]:
        for path, start, stop in parts:
            yield from tqdm(read_tsv(path, chunk_rows, start, stop), desc=f"{Path(path).name} -> {split}", unit="chunk")

    return write_arrays({split: chunks(split, parts) for split, parts in sources.items()}, out_dir, description)


def write_random_arrays(out_dir: Path, rows: dict[str, int], seed: int = 0) -> dict:
    """Converted arrays ({split: rows}) of random rows in place of a real click log (dense features as
    log counts, uniformly random 32-bit hashes, 3% clicks), for throughput checks on a machine without the
    real data; meta.json says so."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in rows.items():
        arrays = {"dense": np.log1p(rng.exponential(10.0, (n, N_DENSE))).astype(np.float32),
                  "cat": rng.integers(0, 2**32, (n, N_CATEGORICAL), dtype=np.uint32),
                  "label": (rng.random(n) < 0.03).astype(np.uint8)}
        for key, (dtype, _) in ARRAYS.items():
            arrays[key].tofile(out_dir / f"{split}_{key}.{SUFFIX[dtype]}")
    meta = {"rows": rows, "description": RANDOM_STAND_IN}
    atomic_write_json(out_dir / "meta.json", meta)
    return meta


def is_converted(folder: Path) -> bool:
    return (folder / "meta.json").exists()


def load_arrays(folder: Path, prepare_name: str) -> dict[str, dict[str, np.ndarray]]:
    """Memory-mapped arrays of each split: {"train": {"dense", "cat", "label"}, "val": {...}}."""
    if not is_converted(folder):
        raise DataMissingError(f"{folder} holds no converted Criteo arrays; prepare them with: "
                               f"python scripts/prepare_data.py {prepare_name} --data-dir {folder.parent}")
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {}
    for split in SPLITS:
        n = meta["rows"][split]
        arrays[split] = {key: np.memmap(folder / f"{split}_{key}.{SUFFIX[dtype]}", dtype=dtype, mode="r",
                                        shape=(n, width) if width > 1 else (n,))
                         for key, (dtype, width) in ARRAYS.items()}
    return arrays


def generate_synthetic(n_rows: int, seed: int, stream: int = 0, max_cardinality: int = 20_000,
                       interacting_columns: int = 8, latent_std: float = 0.35, effect_std: float = 0.5) -> tuple[pd.DataFrame, np.ndarray]:
    """SYNTHETIC click log from a planted model; returns (frame in the Criteo columns, true click
    probabilities).

    The planted model is DLRM-shaped: each categorical value has a scalar effect and a 4-d latent
    vector; the click logit is a bias + the values' effects + pairwise dot products of the latent
    vectors of the first `interacting_columns` columns + a linear function of log(1 + count) of the
    integer features. Column cardinalities span 3..max_cardinality with Zipf-distributed frequencies; integer
    features are log-normal counts (I2 can be -1 as in Criteo); every column has missing values.
    The same `seed` always gives the same model; rows are drawn from a generator seeded by
    (seed, stream), so the train (stream 0) and validation (stream 1) splits are independent
    samples of one model.
    """
    model_rng = np.random.default_rng(seed)
    cardinalities = np.unique(np.geomspace(3, max_cardinality, N_CATEGORICAL).astype(int))
    cardinalities = model_rng.permutation(np.resize(cardinalities, N_CATEGORICAL))
    effects = [model_rng.normal(0.0, effect_std, c) for c in cardinalities]
    latents = [model_rng.normal(0.0, latent_std, (c, 4)) for c in cardinalities]
    hex_values = [np.char.mod("%08x", model_rng.choice(2**32 - 1, size=c, replace=False) + 1).astype(object)
                  for c in cardinalities]
    cat_missing = model_rng.uniform(0.0, 0.3, N_CATEGORICAL)
    dense_mu, dense_sigma = model_rng.uniform(0.0, 4.0, N_DENSE), model_rng.uniform(0.5, 1.5, N_DENSE)
    dense_missing = model_rng.uniform(0.0, 0.4, N_DENSE)
    dense_weight = model_rng.normal(0.0, 0.25, N_DENSE)

    rng = np.random.default_rng([seed, stream])
    parts = {"bias": np.full(n_rows, -1.6), "effects": np.zeros(n_rows), "interactions": np.zeros(n_rows),
             "dense": np.zeros(n_rows)}
    frame = {"label": None}
    chosen_latents = []
    for j, c in enumerate(cardinalities):
        popularity = 1.0 / np.arange(1, c + 1) ** 1.1
        value = rng.choice(c, size=n_rows, p=popularity / popularity.sum())
        missing = rng.random(n_rows) < cat_missing[j]
        parts["effects"] += np.where(missing, 0.0, effects[j][value])
        if j < interacting_columns:
            chosen_latents.append(np.where(missing[:, None], 0.0, latents[j][value]))
        frame[CATEGORICAL_COLUMNS[j]] = np.where(missing, None, hex_values[j][value])
    for a in range(len(chosen_latents)):
        for b in range(a + 1, len(chosen_latents)):
            parts["interactions"] += np.einsum("nd,nd->n", chosen_latents[a], chosen_latents[b])
    for i in range(N_DENSE):
        counts = np.floor(rng.lognormal(dense_mu[i], dense_sigma[i], n_rows)) - (1 if i == 1 else 0)
        missing = rng.random(n_rows) < dense_missing[i]
        parts["dense"] += np.where(missing, 0.0, dense_weight[i] * (np.log1p(np.clip(counts, 0, None)) - dense_mu[i]))
        frame[DENSE_COLUMNS[i]] = np.where(missing, np.nan, counts)
    probability = special.expit(sum(parts.values()))
    frame["label"] = (rng.random(n_rows) < probability).astype(np.int64)
    return pd.DataFrame(frame)[COLUMNS], probability


def bayes_log_loss(probability: np.ndarray) -> float:
    """Expected log loss of the planted model itself: the best any model can reach."""
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return float(np.mean(-(p * np.log(p) + (1 - p) * np.log1p(-p))))


def synthetic_is_current(name: str, folder: Path) -> bool:
    """The folder holds `name` as the current SYNTHETIC spec generates it (else it is regenerated)."""
    if not is_converted(folder):
        return False
    meta = json.loads((folder / "meta.json").read_text())
    spec = SYNTHETIC[name]
    return (meta.get("planted_model", SyntheticSpec(0, 0).planted_model()) == spec.planted_model()
            and meta["rows"] == {"train": spec.train_rows, "val": spec.val_rows})


def prepare_synthetic(name: str, out_dir: Path) -> dict:
    """Generate the SYNTHETIC splits and write their arrays. The generated frames go straight to
    `write_arrays`: they parse from Criteo TSV to the same frames (tests/test_workloads_text_rec.py), and
    skipping the TSV round trip halves the cpu log's time (2,000,000 rows: 27 s of CPU, ~60 s
    through TSV files), with byte-identical arrays."""
    spec = SYNTHETIC[name]
    print(f"generating the SYNTHETIC click log {name} ({spec.train_rows:,} + {spec.val_rows:,} rows) in {out_dir}: "
          "once per data folder, about 30 s for the cpu preset", file=sys.stderr, flush=True)
    for stale in Path(out_dir).glob("trivial_scores-*.json"):  # computed from an earlier generation
        stale.unlink()
    bayes = {}

    def generated(split: str, n_rows: int) -> Iterator[pd.DataFrame]:  # one split at a time in memory
        frame, probability = generate_synthetic(n_rows, stream=SPLITS.index(split), **spec.planted_model())
        bayes[split] = bayes_log_loss(probability)
        yield frame

    meta = write_arrays({"train": generated("train", spec.train_rows), "val": generated("val", spec.val_rows)},
                        out_dir, f"SYNTHETIC click log (planted model, seed {spec.seed}); not Criteo data")
    meta["bayes_log_loss"] = bayes
    meta["planted_model"] = spec.planted_model()
    atomic_write_json(out_dir / "meta.json", meta)
    return meta

