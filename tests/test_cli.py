"""The `timetrial` command line."""

import pytest

from harness.commands.cli import main
from harness.core import results


def test_help_lists_commands_and_options(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "list", "check-submission", "leaderboard"):
        assert command in out
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "preset: cpu" in out and "results_dir: runs" in out and "hp.learning_rate" in out


def test_list_workloads_and_submissions(capsys):
    assert main(["list", "workloads"]) == 0
    out = capsys.readouterr().out
    assert "logreg_breast_cancer_weak_l2" in out and "variant of logreg_breast_cancer" in out
    assert main(["list", "submissions"]) == 0
    out = capsys.readouterr().out
    assert "Decoupled Weight Decay Regularization arXiv:1711.05101" in out


def test_run_writes_a_trial_and_skips_it_the_second_time(tmp_path, capsys, data_dir):
    args = ["run", "workload=logreg_wine", "submission=adamw", "preset=tiny", f"results_dir={tmp_path}",
            f"data_dir={data_dir}", "progress=false", "hp.learning_rate=0.05", "max_steps=20"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "logreg_wine / adamw (tiny, seed 0)" in out and "'learning_rate': 0.05" in out
    [result] = list(tmp_path.rglob(results.RESULT_FILE))
    assert results.read_result(result.parent).hyperparameters["learning_rate"] == 0.05
    assert main(args) == 0
    assert "finished earlier" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["run", "workload=nope"], "unknown workload 'nope'; valid: ["),
    (["run", "submission=nope"], "unknown submission 'nope'"),
    (["run", "preset=huge"], "preset='huge' is not valid; choose one of ['tiny', 'cpu', 'full']"),
    (["run", "learning_rate=3"], "valid keys: "),
    (["list", "things"], "needs 'workloads' or 'submissions'"),
    (["run", "calibrate.note=idle machine (load 1)"], "quote a value with spaces or brackets"),
])
def test_bad_input_names_the_key_and_the_valid_values(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_check_submission_accepts_a_baseline_and_rejects_a_broken_one(tmp_path, capsys, data_dir):
    assert main(["check-submission", "submissions/adamw", f"data_dir={data_dir}"]) == 0
    assert "ok: adamw (optimizer API" in capsys.readouterr().out
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "submission.py").write_text("def create_optimizer(params, hp, workload):\n    return None\n")
    (broken / "tuning_search_space.json").write_text('{"lr": {"min": 1, "max": 0}}')
    assert main(["check-submission", str(broken), f"data_dir={data_dir}"]) == 1
    assert "key 'lr': min 1 > max 0" in capsys.readouterr().out
    (broken / "tuning_search_space.json").write_text('{"lr": {"min": 0.1, "max": 1}}')
    (broken / "metadata.json").write_text('{"method": "none", "paper": {"title": "t", "arxiv": null}}')
    assert main(["check-submission", str(broken), f"data_dir={data_dir}"]) == 1
    assert "create_optimizer must return a torch.optim.Optimizer" in capsys.readouterr().out
