"""logger=wandb writes an offline run (synced later with `wandb sync`) with the eval rows and config."""

import time

import pytest
import wandb

from harness.core.loggers import NullLogger, WandbLogger, make_logger
from harness.core.runner import TrialSpec, run_trial


def test_make_logger_names_valid_choices():
    assert isinstance(make_logger("none"), NullLogger)
    with pytest.raises(ValueError, match="valid: none, wandb"):
        make_logger("tensorboard")


def test_wandb_offline_run_records_evals_and_provenance(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(directory=str(tmp_path))
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=30, eval_period_steps=10,
                     stop_at_target=False, budget_multiplier=100.0)
    record = run_trial(spec, tmp_path / "results", data_dir=data_dir, logger=logger)
    assert record.status == "budget", record.traceback
    run = logger.run
    assert run.offline
    assert run.config["hyperparameters"]["learning_rate"] == record.hyperparameters["learning_rate"]
    assert run.config["provenance"]["git_commit"] == record.provenance["git_commit"]
    # run.finish() returns once the run is closed, but wandb's service process may still be writing the
    # transaction log (seen on a busy CI machine); teardown stops the service, so the file is complete.
    wandb.teardown()
    [run_file] = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    for _ in range(50):  # at most 10 s
        logged = run_file.read_bytes()  # wandb's transaction log: eval rows and the summary, for `wandb sync`
        if b"time_to_target_s" in logged:
            break
        time.sleep(0.2)
    assert b"train_rel_subopt" in logged and b"validation_accuracy" in logged and b"time_to_target_s" in logged
