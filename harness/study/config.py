"""The one module that reads the hydra config (configs/timetrial.yaml): composing it from `key=value`
overrides, and turning it into trials, trial options and leaderboard options for the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig

from harness.core.loggers import make_logger
from harness.core.precision import PRECISIONS
from harness.core.presets import PRESETS
from harness.core.runner import TrialSpec
from harness.core.submission import load_submission
from harness.study.leaderboard import Options
from harness.study.tuning import study_grid

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CHOICES = {"preset": PRESETS, "logger": ("none", "wandb"), "framework": ("pytorch", "jax"),
           "tuning": ("external", "self"), "precision": (None, *PRECISIONS), "compile": (None, True, False)}


class UsageError(ValueError):
    pass


def load_config(overrides: list[str], config_name: str = "timetrial") -> DictConfig:
    """Compose configs/<config_name>.yaml with hydra overrides and check the enumerated keys."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose(config_name=config_name, overrides=overrides)
    except ConfigCompositionException as err:
        cause = err.__cause__ or err
        valid = ", ".join(sorted(_top_level_keys(config_name)))
        raise UsageError(f"{cause}\nvalid keys: {valid}") from None
    except OverrideParseException as err:
        raise UsageError(f"cannot parse the overrides {overrides}: {err}\n"
                         "quote a value with spaces or brackets: 'key=\"a value (with brackets)\"'") from None
    for key, valid in CHOICES.items():
        if key in cfg and cfg[key] not in valid:
            raise UsageError(f"{key}={cfg[key]!r} is not valid; choose one of {list(valid)}")
    return cfg


def _top_level_keys(config_name: str) -> list[str]:
    return list(yaml.safe_load((CONFIG_DIR / f"{config_name}.yaml").read_text()) or {})


def split_arguments(args: list[str]) -> tuple[list[str], list[str], dict[str, Any]]:
    """(positionals, hydra overrides, hyperparameters from hp.NAME=VALUE)."""
    positionals, overrides, hyperparameters = [], [], {}
    for arg in args:
        if arg.startswith("hp.") and "=" in arg:
            name, value = arg[3:].split("=", 1)
            hyperparameters[name] = yaml.safe_load(value)
        elif "=" in arg:
            overrides.append(arg)
        else:
            positionals.append(arg)
    return positionals, overrides, hyperparameters


def trial_options(cfg: DictConfig) -> dict[str, Any]:
    """run_trial keyword arguments shared by every command that runs trials."""
    return {"data_dir": cfg.data_dir, "device": cfg.device, "force": cfg.force,
            "logger": make_logger(cfg.logger, directory=cfg.results_dir), "progress": cfg.progress,
            "checkpoint_every_evals": cfg.checkpoint_every_evals}


def trial_spec(cfg: DictConfig, workload: str, submission: str, hyperparameters: dict[str, Any], ruleset: str = "run",
               study: int | None = None):
    """The trial of cfg's settings; hp.NAME=VALUE names are checked and typed by the submission first."""
    checked = load_submission(submission).checked_hyperparameters(hyperparameters)
    try:
        return TrialSpec(workload=workload, submission=submission, preset=cfg.preset, seed=cfg.seed,
                         hyperparameters=checked, framework=cfg.framework, ruleset=ruleset, study=study,
                         budget_multiplier=cfg.budget_multiplier, stop_at_target=cfg.stop_at_target,
                         max_steps=cfg.max_steps, eval_period_s=cfg.eval_period_s,
                         eval_period_steps=cfg.eval_period_steps, nproc_per_node=cfg.nproc_per_node,
                         precision=cfg.precision, compile=cfg.compile)
    except ValueError as err:  # a setting the trial cannot have (nproc_per_node=0, ...): one line, not a traceback
        raise UsageError(str(err)) from None


def leaderboard_options(cfg: DictConfig):
    return Options(variant_rule=cfg.leaderboard.variant_rule, reference=cfg.leaderboard.reference,
                   n_boot=cfg.leaderboard.bootstrap, seed=cfg.seed, profile_points=cfg.leaderboard.profile_points,
                   exclude_contended=cfg.leaderboard.exclude_contended, normalized=cfg.leaderboard.normalized)


def tune_specs(cfg: DictConfig, workloads: list[str], submission_ref: str, hyperparameters: dict[str, Any]):
    """The study grid of `cfg.tuning` for one submission on `workloads`; a bad search space fails here."""
    submission = load_submission(submission_ref)
    checked = submission.checked_hyperparameters(hyperparameters)
    return [spec for workload in workloads for spec in study_grid(
        submission, trial_spec(cfg, workload, submission_ref, {}), cfg.tuning, cfg.trials, cfg.studies, checked)]
