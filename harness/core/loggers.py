"""Experiment loggers: `none` (default) and `wandb`."""

from __future__ import annotations

import os
from typing import Any, Mapping

from harness.core.results import TrialRecord


class NullLogger:
    def start(self, name: str, config: Mapping[str, Any]) -> None:
        pass

    def log_eval(self, row: Mapping[str, Any]) -> None:
        pass

    def finish(self, record: TrialRecord) -> None:
        pass


class WandbLogger:
    """Logs every eval row, the hyperparameters and the provenance to Weights & Biases.

    Online when an API key is configured; otherwise offline (upload later with `wandb sync`).
    """

    def __init__(self, project: str = "timetrial", directory: str | None = None) -> None:
        self.project = project
        self.directory = directory
        self.run = None

    def start(self, name: str, config: Mapping[str, Any]) -> None:
        import wandb  # imported here: wandb is slow to import and optional at run time

        mode = os.environ.get("WANDB_MODE")
        if mode is None:
            has_key = bool(os.environ.get("WANDB_API_KEY")) or os.path.exists(os.path.expanduser("~/.netrc"))
            mode = "online" if has_key else "offline"
        self.run = wandb.init(project=self.project, name=name, config=dict(config), mode=mode,
                              dir=self.directory, reinit="finish_previous")

    def log_eval(self, row: Mapping[str, Any]) -> None:
        numeric = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.run.log(numeric, step=int(row["step"]))

    def finish(self, record: TrialRecord) -> None:
        for key in ("status", "reached_target", "time_to_target_s", "steps_to_target"):
            self.run.summary[key] = getattr(record, key)
        self.run.finish()


def make_logger(kind: str, directory: str | None = None):
    if kind == "none":
        return NullLogger()
    if kind == "wandb":
        return WandbLogger(directory=directory)
    raise ValueError(f"logger={kind!r}; valid: none, wandb")
