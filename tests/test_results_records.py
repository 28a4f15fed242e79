"""Trial records carry their placement as fields (ruleset, study, trial) and a typed status; records
written before those fields are migrated once by scripts/migrate_results.py (keys and folders unchanged)."""

import importlib.util
import json
from pathlib import Path

import pytest

from harness.core import results
from harness.core.results import TrialStatus, legacy_placement
from harness.core.runner import TrialSpec, run_trial
from harness.study import leaderboard

REPO = Path(__file__).resolve().parent.parent


def migrate_script():
    spec = importlib.util.spec_from_file_location("migrate_results", REPO / "scripts" / "migrate_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_placement_is_typed_and_hashed_as_the_tag_it_replaces():
    spec = TrialSpec("logreg_wine", "adamw", ruleset="external", study=2, trial=3)
    assert spec.tag == "external/study2/trial3"
    assert TrialSpec("logreg_wine", "adamw", ruleset="self", study=1).tag == "self/study1"
    assert TrialSpec("logreg_wine", "adamw").tag == "run"
    assert legacy_placement("external/study2/trial3") == results.Placement("external", 2, 3)
    assert legacy_placement("calibrate-tune") == results.Placement("calibrate-tune", None, None)
    # a spec's key (its folder and cache identity) is what it was when the placement was a tag string
    published = json.loads(next((REPO / "results" / "trials").rglob("result.json")).read_text())
    assert TrialSpec(**published["spec"]).key() == published["trial_key"]


def test_a_record_holds_placement_fields_and_status_values(tmp_path, data_dir):
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3, ruleset="self", study=2)
    record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu")
    written = json.loads((spec.trial_dir(tmp_path) / results.RESULT_FILE).read_text())
    assert (written["ruleset"], written["study"], written["trial"]) == ("self", 2, None)
    assert TrialStatus(written["status"]) in results.FINISHED and record["status"] == written["status"]
    assert leaderboard.with_study_columns(results.load_results(tmp_path))["study"].tolist() == [2]


def test_migration_adds_placement_once_and_readers_refuse_unmigrated_trees(tmp_path, data_dir):
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3, ruleset="external", study=1, trial=4)
    run_trial(spec, tmp_path, data_dir=data_dir, device="cpu")
    file = spec.trial_dir(tmp_path) / results.RESULT_FILE
    legacy = json.loads(file.read_text())
    for field in results.PLACEMENT_FIELDS:  # a record as written before the fields existed
        del legacy[field]
        del legacy["spec"][field]
    legacy["spec"]["tag"] = legacy["tag"]
    results.atomic_write_json(file, legacy)
    with pytest.raises(ValueError, match="scripts/migrate_results.py"):
        results.load_results(tmp_path)
    module = migrate_script()
    assert module.migrate(tmp_path, check=True) == (1, 0) and "ruleset" not in json.loads(file.read_text())
    assert module.migrate(tmp_path) == (1, 0)
    assert module.migrate(tmp_path) == (0, 1)
    migrated = json.loads(file.read_text())
    assert (migrated["ruleset"], migrated["study"], migrated["trial"]) == ("external", 1, 4)
    assert TrialSpec(**migrated["spec"]) == spec
    assert not results.load_results(tmp_path).empty
