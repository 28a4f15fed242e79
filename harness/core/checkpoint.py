"""Trial checkpoints, so that a preempted or timed-out job resumes where it stopped.

A checkpoint holds the model's parameters, the submission's optimizer state, the clock
(`TrainState`), every random generator and the step. Objects with `state_dict()` (modules,
optimizers, schedulers, grad scalers) are saved through it, anywhere inside the optimizer state's
dicts, lists and tuples, and restored with `load_state_dict()` into a freshly initialised state;
the model object itself is never pickled (workloads may keep per-forward state on it).
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.core.results import atomic_write, atomic_write_text

CHECKPOINT_FILE = "checkpoint.pt"


@dataclasses.dataclass(frozen=True)
class NotSaved:
    """Stands in a checkpoint for an entry that cannot be pickled; on resume the fresh state's entry stays."""

    where: str
    type_name: str


PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, np.ndarray, np.generic)


def state_tree(value: Any, where: str = "optimizer_state") -> Any:
    """`value` with every object that has `state_dict()` replaced by that state dict. As AlgoPerf, an entry
    that has none and cannot be pickled (a submission's own namedtuple class, a closure) is not saved:
    a warning names it, and a resumed trial keeps that entry as `init_optimizer_state` rebuilt it."""
    if hasattr(value, "state_dict") and callable(value.state_dict):
        return {"state_dict": value.state_dict()}
    if isinstance(value, dict):
        return {key: state_tree(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [state_tree(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if hasattr(value, "_fields") and not picklable(type(value)):
            return tuple(items)  # a namedtuple class pickle cannot find: its fields; the fresh state gives the class
        return _same_sequence_type(value, items)
    if not isinstance(value, PLAIN) and not picklable(value):
        warnings.warn(f"checkpoint: {where} ({type(value).__name__}) has no state_dict() and cannot be pickled; "
                      "it is not saved, and a resumed trial rebuilds it with init_optimizer_state")
        return NotSaved(where, type(value).__name__)
    return value


def picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001  (pickle raises several kinds for unpicklable objects)
        return False
    return True


def load_state_tree(fresh: Any, saved: Any, where: str = "optimizer_state") -> Any:
    """`fresh` (a newly initialised state of the same shape) with `saved` loaded into it."""
    if isinstance(saved, NotSaved):
        return fresh
    if hasattr(fresh, "load_state_dict") and callable(fresh.load_state_dict):
        fresh.load_state_dict(saved["state_dict"])
        return fresh
    if isinstance(fresh, dict):
        if set(fresh) != set(saved):
            raise ValueError(f"checkpoint's {where} has keys {sorted(saved)}, the fresh state {sorted(fresh)}")
        return {key: load_state_tree(fresh[key], saved[key], f"{where}[{key!r}]") for key in fresh}
    if isinstance(fresh, (list, tuple)):
        if len(fresh) != len(saved):
            raise ValueError(f"checkpoint's {where} has {len(saved)} items, the fresh state {len(fresh)}")
        return _same_sequence_type(fresh, [load_state_tree(f, s, f"{where}[{i}]")
                                           for i, (f, s) in enumerate(zip(fresh, saved))])
    return saved


def _same_sequence_type(like: list | tuple, items: list) -> list | tuple:
    """`items` as a sequence of `like`'s type; named tuples (optax states) take positional fields."""
    if isinstance(like, tuple) and hasattr(like, "_fields"):
        return type(like)(*items)
    return type(like)(items)


def rng_states() -> dict[str, Any]:
    """The state of every global random generator a trial draws from (the submission's `rng` values
    derive from the seed and the step: harness/core/prng.py)."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(trial_dir: Path, payload: dict[str, Any]) -> None:
    """Write the checkpoint via a temp file + rename: a job killed mid-write leaves the old one intact."""
    atomic_write(Path(trial_dir) / CHECKPOINT_FILE, lambda handle: torch.save(payload, handle), binary=True)


def load(trial_dir: Path) -> dict[str, Any] | None:
    path = Path(trial_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None
    # Our own file, holding numpy RNG state and plain Python objects besides tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def delete(trial_dir: Path) -> None:
    (Path(trial_dir) / CHECKPOINT_FILE).unlink(missing_ok=True)


def truncate_lines(path: Path, lines: int) -> None:
    """Keep the first `lines` lines of a log file (rows logged after the checkpoint are redone)."""
    path = Path(path)
    if path.exists():
        kept = path.read_text().splitlines(keepends=True)[:lines]
        atomic_write_text(path, "".join(kept))
