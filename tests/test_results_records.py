"""Trial records are typed (results.TrialRecord) and carry their placement as fields (ruleset, study,
trial) and a typed status; on disk they keep the keys result.json has always had. Records written
before the placement fields are migrated once by scripts/migrate_results.py (keys and folders unchanged)."""

import dataclasses
import json
import multiprocessing
import time
from pathlib import Path

import pytest

from harness.core import results
from harness.core.results import TrialRecord, TrialStatus, legacy_placement
from harness.core.runner import TrialSpec, run_trial
from harness.study import leaderboard

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = sorted((REPO / "results" / "trials").rglob(results.RESULT_FILE))
#: a record as published before the fields below existed (a claims trial of 2026-12-01, since rerun)
OLD_RECORD = REPO / "tests" / "fixtures" / "old_record" / results.RESULT_FILE
#: keys the runner has written since OLD_RECORD ran (each None or absent in such records)
KEYS_SINCE_PUBLISHED = {"timing_version", "torch_threads", "precision", "tf32", "compiled", "median_step_time_s", "cpu_time_s", "cpu_share",
                        "other_cores", "contended", "workload_definition"}


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
    assert TrialStatus(written["status"]) in results.FINISHED and record.status == written["status"]
    assert leaderboard.with_study_columns(results.load_results(tmp_path))["study"].tolist() == [2]


def test_migration_adds_placement_once_and_readers_refuse_unmigrated_trees(tmp_path, data_dir, load_script):
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
    module = load_script("migrate_results")
    assert module.migrate(tmp_path, check=True) == (1, 0) and "ruleset" not in json.loads(file.read_text())
    assert module.migrate(tmp_path) == (1, 0)
    assert module.migrate(tmp_path) == (0, 1)
    migrated = json.loads(file.read_text())
    assert (migrated["ruleset"], migrated["study"], migrated["trial"]) == ("external", 1, 4)
    assert TrialSpec(**migrated["spec"]) == spec
    assert not results.load_results(tmp_path).empty


def test_every_published_record_reads_and_writes_back_unchanged():
    assert len(PUBLISHED) > 100
    for file in PUBLISHED:
        record = results.read_result(file.parent)
        assert json.dumps(record.to_json(), sort_keys=True) == json.dumps(json.loads(file.read_text()), sort_keys=True)
        assert not record.extra, file


def test_a_fresh_trial_writes_the_keys_the_published_records_have(tmp_path, data_dir):
    published = set(json.loads(OLD_RECORD.read_text()))
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3, ruleset="self", study=1)
    record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu")
    written = json.loads((spec.trial_dir(tmp_path) / results.RESULT_FILE).read_text())
    assert set(written) == published | KEYS_SINCE_PUBLISHED
    assert written == results.comparable(record.to_json())
    assert TrialRecord.from_json(written) == record  # typed again: status, floats, the spec as a mapping
    assert not record.skipped and run_trial(spec, tmp_path, data_dir=data_dir, device="cpu").skipped  # never written
    frame = results.load_results(tmp_path)
    assert published <= {column.split(".")[0] for column in frame.columns}


def test_a_record_round_trips_and_keeps_what_it_does_not_know(tmp_path):
    record = TrialRecord(workload="w", submission="s", preset="cpu", seed=1, ruleset="external",
                         tag="external/study1/trial2", study=1, trial=2, status="budget", budget_s=60.0, target_metric="loss", steps=10,
                         best_metric=float("nan"), final_metrics={"loss": 0.5}, error="x",
                         extra={"nproc_per_node": 2}, skipped=True, job_id="123")
    assert record.status is TrialStatus.BUDGET
    data = record.to_json()
    assert data["best_metric"] == "nan" and data["nproc_per_node"] == 2
    assert not {"skipped", "job_id", "extra", "provenance", "traceback"} & set(data)  # never written, or unset
    assert data["variant_of"] is None and data["evals"] is None  # their parts are set: written as null
    assert "contended" not in data  # none of the clock's figures is set
    back = TrialRecord.from_json(data)
    assert back.best_metric != back.best_metric  # NaN, a float again
    assert back == dataclasses.replace(record, best_metric=back.best_metric, skipped=False, job_id=None)
    results.write_result(tmp_path, record)
    assert results.read_result(tmp_path).to_json() == data


def test_an_old_record_takes_defaults_for_missing_keys_and_keeps_unknown_ones(tmp_path):
    old = json.loads(OLD_RECORD.read_text())
    del old["resumed_from_steps"], old["final_metrics"]
    old["written_by"] = {"a": "newer runner"}
    record = TrialRecord.from_json(old)
    assert record.timing_version is None and record.median_step_time_s is None and record.torch_threads is None
    assert record.resumed_from_steps is None and record.extra == {"written_by": {"a": "newer runner"}}
    assert set(record.to_json()) == set(old) | {"resumed_from_steps", "final_metrics"}  # their part is set: null


def test_a_file_that_is_no_record_counts_as_not_run(tmp_path):
    spec = TrialSpec("logreg_wine", "adamw")
    good = json.loads(OLD_RECORD.read_text())
    for broken, match in (({**good, "status": "finished"}, "'finished' is not a valid TrialStatus"),
                          ({k: v for k, v in good.items() if k != "workload"}, "workload"), ([good], "a JSON list")):
        results.atomic_write_json(spec.trial_dir(tmp_path) / results.RESULT_FILE, broken)
        with pytest.warns(UserWarning, match=match):
            assert results.read_result(spec.trial_dir(tmp_path)) is None


def test_a_tree_kept_inside_another_is_read_as_its_own(tmp_path):
    """results/deep-cpu (the deep suite's board in progress) sits inside the published tree: its trials
    are read with it, never with the outer board."""
    published = json.loads(PUBLISHED[0].read_text())
    outer, inner = TrialSpec("logreg_wine", "adamw"), TrialSpec("gpt2", "adamw")
    results.atomic_write_json(outer.trial_dir(tmp_path) / results.RESULT_FILE, published)
    results.atomic_write_json(inner.trial_dir(tmp_path / "deep-cpu") / results.RESULT_FILE, {**published, "workload": "gpt2"})
    assert results.result_files(tmp_path) == [outer.trial_dir(tmp_path) / results.RESULT_FILE]
    assert results.load_results(tmp_path)["workload"].tolist() == [published["workload"]]
    assert results.load_results(tmp_path / "deep-cpu")["workload"].tolist() == ["gpt2"]


def _prepare_in_turn(folder: str) -> None:
    """One concurrent first trial: prepares `folder` unless another has; each preparation is logged."""
    folder = Path(folder)
    done = folder / "done"

    def prepare() -> None:
        with open(folder / "log", "a") as log:
            log.write("prepared\n")
        time.sleep(0.3)  # long enough that the other processes arrive while it runs
        done.touch()

    results.prepare_once(folder / ".lock", done.exists, prepare)
    assert done.exists()  # nobody returns before the data is there


def test_concurrent_first_trials_prepare_data_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_prepare_in_turn, args=(str(tmp_path),)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert (tmp_path / "log").read_text() == "prepared\n"
