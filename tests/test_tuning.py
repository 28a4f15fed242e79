"""Tuning rulesets: the study grid's trials, and `timetrial tune` failing early and resuming."""

import json
import math
import shutil

import pytest

from harness.commands import cli
from harness.core.results import RESULT_FILE, read_result
from harness.core.runner import TrialSpec
from harness.core.search_space import SearchSpaceError
from harness.core.submission import SUBMISSIONS_DIR, load_submission
from harness.study import sweep
from harness.study.tuning import SELF_TUNING_BUDGET_MULTIPLIER, study_grid


@pytest.fixture(scope="module")
def adamw():
    return load_submission("adamw")


TEMPLATE = TrialSpec("logreg_wine", "adamw", preset="tiny", seed=10, budget_multiplier=2.0)


def test_external_grid_has_trials_times_studies_with_own_points_per_study(adamw):
    specs = study_grid(adamw, TEMPLATE, "external", trials=5, studies=3)
    assert [s.tag for s in specs[:6]] == [f"external/study1/trial{j}" for j in range(1, 6)] + ["external/study2/trial1"]
    assert len(specs) == 15 and len({s.key() for s in specs}) == 15
    assert [s.seed for s in specs[::5]] == [11, 12, 13]  # one seed per study, from the base seed
    assert all(s.budget_multiplier == 2.0 and s.workload == "logreg_wine" for s in specs)
    space = json.loads((SUBMISSIONS_DIR / "adamw" / "tuning_search_space.json").read_text())
    lr = space["learning_rate"]
    by_study = [[s.hyperparameters["learning_rate"] for s in specs[k * 5:(k + 1) * 5]] for k in range(3)]
    assert all(lr["min"] <= v <= lr["max"] for values in by_study for v in values)
    assert len({tuple(v) for v in by_study}) == 3  # each study draws its own points
    # log scaling spreads the five points over the decades, not all in the top one
    assert min(by_study[0]) < math.sqrt(lr["min"] * lr["max"]) < max(by_study[0])
    assert all(s.hyperparameters["beta2"] == 0.999 for s in specs)  # feasible points
    assert study_grid(adamw, TEMPLATE, "external", trials=5, studies=3) == specs  # reproducible


def test_overrides_win_over_points(adamw):
    specs = study_grid(adamw, TEMPLATE, "external", trials=2, studies=1, overrides={"weight_decay": 0.0})
    assert [s.hyperparameters["weight_decay"] for s in specs] == [0.0, 0.0]


def test_self_tuning_runs_defaults_once_per_study_with_more_budget(adamw):
    specs = study_grid(adamw, TEMPLATE, "self", trials=5, studies=3)
    assert [s.tag for s in specs] == ["self/study1", "self/study2", "self/study3"]
    assert [s.seed for s in specs] == [11, 12, 13]
    assert all(s.hyperparameters == {} for s in specs)  # the runner fills in metadata defaults
    assert all(s.budget_multiplier == 2.0 * SELF_TUNING_BUDGET_MULTIPLIER for s in specs)


def test_bad_grids_are_refused(adamw):
    with pytest.raises(ValueError, match="tuning='random'.*valid: \\['external', 'self'\\]"):
        study_grid(adamw, TEMPLATE, "random")
    with pytest.raises(ValueError, match="studies=0"):
        study_grid(adamw, TEMPLATE, "external", studies=0)
    no_space = load_submission(SUBMISSIONS_DIR / "adamw" / "submission.py")  # a single file: no search space
    with pytest.raises(SearchSpaceError, match="'submission' has no tuning_search_space.json.*tuning=self"):
        study_grid(no_space, TEMPLATE, "external")


@pytest.mark.parametrize("space, key", [
    ({"learning_rate": {"min": 1e-3, "max": 1e-1, "scaling": "cubic"}}, "learning_rate"),
    ({"beta2": {"min": 0.999, "max": 0.9}}, "beta2"),
    ({"weight_decay": {"min": 0.0, "max": 0.1, "scaling": "log"}}, "weight_decay"),
    ({"epsilon": {"feasible_points": []}}, "epsilon"),
])
def test_tune_with_a_bad_space_fails_before_any_trial(tmp_path, capsys, space, key):
    folder = tmp_path / "my_adamw"
    shutil.copytree(SUBMISSIONS_DIR / "adamw", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "tuning_search_space.json").write_text(json.dumps(space))
    results = tmp_path / "results"
    code = cli.main(["tune", f"submission={folder}", "workload=logreg_wine", "preset=tiny",
                     f"results_dir={results}", "progress=false"])
    assert code == 2
    assert f"key {key!r}" in capsys.readouterr().err
    assert not results.exists()


@pytest.mark.slow
def test_tune_resumes_where_it_stopped(tmp_path, data_dir, capsys):
    results = tmp_path / "results"
    argv = ["tune", "submission=adamw", "workload=logreg_wine", "preset=tiny", "trials=2", "studies=1",
            "max_steps=2", "leaderboard.bootstrap=10", f"results_dir={results}", f"data_dir={data_dir}",
            "progress=false"]
    assert cli.main(argv) == 0
    files = sorted(results.rglob(RESULT_FILE))
    assert {read_result(f.parent).tag for f in files} == {"external/study1/trial1", "external/study1/trial2"}
    assert "ruleset `external`" in capsys.readouterr().out
    stamps = {f: f.stat().st_mtime_ns for f in files}
    files[0].unlink()  # as if the sweep had stopped before this trial finished

    cfg = cli.load_config(argv[1:])
    records = sweep.run_local(cli.tune_specs(cfg, ["logreg_wine"], "adamw", {}), results, progress=False,
                              data_dir=data_dir)
    assert sum(not r.skipped for r in records) == 1
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files[1:])
    assert files[0].exists()


@pytest.mark.slow
def test_submit_checks_tunes_and_writes_a_leaderboard_row(tmp_path, data_dir, capsys):
    folder = tmp_path / "my_adamw"
    shutil.copytree(SUBMISSIONS_DIR / "adamw", folder, ignore=shutil.ignore_patterns("__pycache__"))
    results = tmp_path / "results"
    code = cli.main(["submit", str(folder), "tuning=self", "studies=1", "suite=[logreg_wine]", "preset=tiny",
                     "max_steps=2", "workload=logreg_wine", "leaderboard.bootstrap=5",
                     f"results_dir={results}", f"data_dir={data_dir}", "progress=false"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok: adamw" in out and "**>> my_adamw <<**" in out and "ruleset `self`" in out
    assert [read_result(f.parent).tag for f in results.rglob(RESULT_FILE)] == ["self/study1"]
    assert {"leaderboard.md", "leaderboard.csv", "report.html"} <= {p.name for p in results.iterdir()}

    bad = tmp_path / "broken"
    shutil.copytree(folder, bad)
    (bad / "metadata.json").unlink()
    assert cli.main(["submit", str(bad), f"results_dir={tmp_path / 'other'}", "progress=false"]) == 1
    assert "missing metadata.json" in capsys.readouterr().out
    assert not (tmp_path / "other").exists()
