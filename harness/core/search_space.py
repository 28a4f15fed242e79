"""Tuning search spaces in AlgoPerf's `tuning_search_space.json` format.

Either a mapping of hyperparameter -> range / feasible points::

    {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
     "beta2": {"feasible_points": [0.999]}}

or a list of fixed points (`[{"learning_rate": 0.001, ...}, ...]`). Points are drawn quasi-randomly
with a scrambled, seeded Halton sequence (scipy.stats.qmc), as AlgoPerf's external-tuning ruleset.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.stats import qmc

SCALINGS = ("linear", "log")


class SearchSpaceError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    scaling: str

    def value_at(self, u: float) -> float:
        if self.scaling == "log":
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))


@dataclasses.dataclass(frozen=True)
class Choice:
    name: str
    points: tuple[Any, ...]

    def value_at(self, u: float) -> Any:
        return self.points[min(int(u * len(self.points)), len(self.points) - 1)]


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `fixed_points` is set for the list form, `dimensions` otherwise."""

    dimensions: tuple[Range | Choice, ...] = ()
    fixed_points: tuple[Mapping[str, Any], ...] | None = None
    source: str = "<dict>"

    @property
    def names(self) -> list[str]:
        if self.fixed_points is not None:
            return sorted({k for point in self.fixed_points for k in point})
        return [d.name for d in self.dimensions]

    def center(self) -> dict[str, Any]:
        """The point used when nothing is tuned: the first fixed point, or each range's
        (geometric) middle and each choice's first feasible point."""
        if self.fixed_points is not None:
            return dict(self.fixed_points[0])
        return {d.name: d.value_at(0.5) if isinstance(d, Range) else d.points[0] for d in self.dimensions}

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """`n` quasi-random points; the same (n, seed) always gives the same points."""
        if self.fixed_points is not None:
            if n > len(self.fixed_points):
                raise SearchSpaceError(
                    f"{self.source}: asked for {n} trials but the list form has only {len(self.fixed_points)} points"
                )
            return [dict(p) for p in self.fixed_points[:n]]
        if not self.dimensions:
            return [{} for _ in range(n)]
        sampler = qmc.Halton(d=len(self.dimensions), scramble=True, seed=np.random.default_rng(seed))
        unit = sampler.random(n)
        return [{d.name: d.value_at(float(u)) for d, u in zip(self.dimensions, row)} for row in unit]


    def typed(self, name: str, value: Any) -> Any:
        """`value` (perhaps a command-line string such as '1e-3') as the type this space gives `name`:
        a float for a range, the type of the feasible points for a choice; unchanged when the space lacks it."""
        dimension = next((d for d in self.dimensions if d.name == name), None)
        if isinstance(dimension, Range):
            return as_type(name, value, float)
        if isinstance(dimension, Choice):
            return as_type(name, value, type(dimension.points[0]))
        known = [point[name] for point in self.fixed_points or () if name in point]
        return as_type(name, value, type(known[0])) if known else value


def as_type(name: str, value: Any, kind: type) -> Any:
    """`value` converted to `kind` (bool from true/false, numbers from strings); a one-line error names `name`."""
    if value is None or isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    if kind is bool:
        lowered = str(value).lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    elif kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
        else:
            if kind is float or number.is_integer():
                return kind(number)
    elif kind is str:
        return str(value)
    raise SearchSpaceError(f"hyperparameter {name}={value!r} is not a {kind.__name__}")


def parse_search_space(raw: Any, source: str = "<dict>") -> SearchSpace:
    """Validate a search space and name the first bad key and what would be valid."""
    if isinstance(raw, list):
        if not raw:
            raise SearchSpaceError(f"{source}: the list of fixed points is empty")
        for i, point in enumerate(raw):
            if not isinstance(point, dict):
                raise SearchSpaceError(f"{source}: point {i} must be a mapping of name -> value, got {point!r}")
        return SearchSpace(fixed_points=tuple(raw), source=source)
    if not isinstance(raw, dict):
        raise SearchSpaceError(f"{source}: expected a mapping or a list of points, got {type(raw).__name__}")
    dims: list[Range | Choice] = []
    for name, spec in raw.items():
        where = f"{source}: key {name!r}"
        if not isinstance(spec, dict):
            raise SearchSpaceError(f"{where}: expected {{min, max, scaling}} or {{feasible_points}}, got {spec!r}")
        if "feasible_points" in spec:
            points = spec["feasible_points"]
            if not isinstance(points, list) or not points:
                raise SearchSpaceError(f"{where}: feasible_points must be a non-empty list")
            dims.append(Choice(name, tuple(points)))
            continue
        missing = {"min", "max"} - spec.keys()
        if missing:
            raise SearchSpaceError(f"{where}: missing {sorted(missing)} (or give feasible_points)")
        scaling = spec.get("scaling", "linear")
        if scaling not in SCALINGS:
            raise SearchSpaceError(f"{where}: unknown scaling {scaling!r}; valid: {list(SCALINGS)}")
        low, high = spec["min"], spec["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SearchSpaceError(f"{where}: min and max must be numbers, got {low!r}, {high!r}")
        if low > high:
            raise SearchSpaceError(f"{where}: min {low} > max {high}")
        if scaling == "log" and low <= 0:
            raise SearchSpaceError(f"{where}: log scaling needs min > 0, got {low}")
        dims.append(Range(name, float(low), float(high), scaling))
    return SearchSpace(dimensions=tuple(dims), source=source)


def load_search_space(path: Path) -> SearchSpace:
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise SearchSpaceError(f"{path}: not valid JSON ({err})") from None
    return parse_search_space(raw, source=str(path))


def merged(defaults: Mapping[str, Any], point: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Submission defaults, updated by a search-space point, then by explicit overrides."""
    values = dict(defaults)
    values.update(point)
    for extra in overrides:
        values.update(extra)
    return values
