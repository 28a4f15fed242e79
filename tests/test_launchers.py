"""launcher=debug and launcher=local: same results, idempotent re-runs, failures visible in status."""

import dataclasses
import json
import warnings

import pytest

from harness.commands.cli import load_config, main
from harness.core import results
from harness.core.runner import TrialSpec
from harness.study import launchers, status, sweep

# Time-dependent fields (and where the trial ran) differ between runs; everything else must not.
VOLATILE = {"wall_time_s", "submission_time_s", "eval_time_s", "total_time_s", "time_to_target_s",
            "provenance", "median_step_time_s", "cpu_time_s", "cpu_share", "other_cores", "contended"}


def grid(n: int, max_steps: int = 30) -> list[TrialSpec]:
    """n adamw trials on a tiny logistic regression; evals by step count so content is deterministic."""
    return [TrialSpec(workload="logreg_breast_cancer", submission="adamw", preset="tiny", seed=seed,
                      hyperparameters={"learning_rate": 0.01 * (seed + 1)}, ruleset="grid", max_steps=max_steps,
                      eval_period_steps=10, eval_period_s=1e9, budget_multiplier=1e4, stop_at_target=False)
            for seed in range(n)]


def content(record: results.TrialRecord) -> dict:
    return {k: v for k, v in record.to_json().items() if k not in VOLATILE}


def config(results_dir, data_dir, *overrides):
    return load_config([f"results_dir={results_dir}", f"data_dir={data_dir}", "progress=false", *overrides])


@pytest.mark.slow
def test_local_launcher_matches_debug_and_is_idempotent(tmp_path, data_dir):
    specs = grid(2)
    debug = sweep.launch(specs, config(tmp_path / "debug", data_dir))
    local_cfg = config(tmp_path / "local", data_dir, "launcher=local", "launcher.max_workers=2",
                       "launcher.poll_s=0.2")
    local = sweep.launch(specs, local_cfg)
    assert [r.status for r in local] == ["budget", "budget"]
    assert [content(r) for r in local] == [content(r) for r in debug]
    for spec in specs:  # the jobs' own records, with the trial each ran
        job = json.loads(launchers.job_record_path(tmp_path / "local", spec).read_text())
        assert job["launcher"] == "local" and job["trial_dir"] == str(spec.trial_dir(tmp_path / "local"))

    again = sweep.launch(specs, local_cfg)  # nothing left to do: no job is started
    assert all(r.skipped for r in again)
    assert len(list((tmp_path / "local" / launchers.SUBMITIT_DIR).glob("*_submitted.pkl"))) == 2

    (specs[1].trial_dir(tmp_path / "local") / results.RESULT_FILE).unlink()  # a lost result
    rerun = sweep.launch(specs, local_cfg)
    assert rerun[0].skipped and not rerun[1].skipped
    assert content(rerun[1]) == content(debug[1])
    assert len(list((tmp_path / "local" / launchers.SUBMITIT_DIR).glob("*_submitted.pkl"))) == 3
    assert len(results.result_files(tmp_path / "local")) == 2  # one directory per trial, no duplicate


def test_failed_trial_shows_in_status_with_its_error(tmp_path, data_dir, capsys):
    bad = TrialSpec(workload="logreg_breast_cancer", submission="adamw", preset="tiny", ruleset="bad",
                    hyperparameters={"learning_rate": "fast"}, max_steps=5)
    good = grid(1, max_steps=5)[0]
    records = sweep.launch([bad, good], config(tmp_path, data_dir))
    assert [r.status for r in records] == ["failed", "budget"]
    table = status.trial_states(tmp_path).set_index("tag")
    assert table.loc["bad", "state"] == "failed" and "TypeError" in table.loc["bad", "detail"]
    assert table.loc["grid", "state"] == "done"
    assert main(["status", f"results_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "1 done, 1 failed" in out and "TypeError" in out


def test_status_reports_an_interrupted_trial_and_a_dead_local_job(tmp_path, data_dir):
    spec = grid(1)[0]
    trial_dir = spec.trial_dir(tmp_path)
    trial_dir.mkdir(parents=True)
    assert status.trial_states(tmp_path).empty
    results.atomic_write_json(launchers.job_record_path(tmp_path, spec), {
        "launcher": "local", "job_id": "999999999", "stderr": str(tmp_path / "job.err"),
        "trial_dir": str(trial_dir), "workload": spec.workload, "submission": "adamw", "tag": "grid",
        "seed": 0, "submitted_at": "2026-01-01T00:00:00+00:00"})
    (tmp_path / "job.err").write_text("Traceback ...\nMemoryError\n")
    row = status.trial_states(tmp_path).iloc[0]
    assert row["state"] == "failed" and "EXITED without a result" in row["detail"] and "MemoryError" in row["detail"]


def test_unknown_launcher_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="(?s)launcher/nope.*debug.*local.*slurm"):
        load_config(["launcher=nope"])
    with pytest.raises(ValueError, match="launcher='nope' has no submitit executor; valid: local, slurm"):
        launchers.make_executor({"name": "nope"}, tmp_path)


def test_reusing_trials_from_other_hardware_warns(tmp_path, data_dir):
    specs = grid(2, max_steps=3)
    cfg = config(tmp_path, data_dir)
    first = sweep.launch(specs, cfg)
    here = first[0].provenance["hardware"]["fingerprint"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reusing this machine's own trials is silent
        assert all(r.skipped for r in sweep.launch(specs, cfg))
    record = results.read_result(specs[1].trial_dir(tmp_path))
    record.provenance["hardware"]["fingerprint"] = "elsewhere000"
    results.write_result(specs[1].trial_dir(tmp_path), record)
    with pytest.warns(UserWarning, match=r"1 of these 2 trials are finished results from other hardware "
                                         r"\(elsewhere000\).*force=true reruns them here"):
        sweep.launch(specs, cfg)
    # on a cluster the nodes are only compared with each other
    reused = [dataclasses.replace(first[0], skipped=True, provenance={"hardware": {"fingerprint": f}})
              for f in (here, "elsewhere000")]
    assert sweep.foreign_hardware(reused, None).startswith("these 2 trials reuse finished results from 2 machines")
    assert sweep.foreign_hardware(reused[:1], None) == ""
