"""`timetrial submit` ranks a new row among the published submissions and the tuned baselines
(harness/commands/compare.py): in seconds on one machine, in reference steps across machines."""

import dataclasses
from pathlib import Path

from harness.commands import compare
from harness.commands.cli import main
from harness.core.results import TrialRecord, legacy_placement, write_result
from harness.study import leaderboard

HW_A = {"fingerprint": "aaaaaaaaaaaa", "label": "CPU A (1 threads)"}
HW_B = {"fingerprint": "bbbbbbbbbbbb", "label": "CPU B (1 threads)"}


def write_trial(root: Path, submission: str, tag: str, seconds: float, hardware=HW_A, step_time: float | None = None):
    trial_dir = root / "trials" / "w1" / submission / "cpu" / f"{tag.replace('/', '-')}-seed1"
    write_result(trial_dir, TrialRecord(**{
        "workload": "w1", "submission": submission, "preset": "cpu", "seed": 1, "tag": tag,
        **dataclasses.asdict(legacy_placement(tag)), "status": "reached",
        "reached_target": True, "time_to_target_s": seconds, "steps_to_target": 100, "budget_s": 60.0,
        "variant_of": None, "target_metric": "loss", "target_value": 0.1, "target_direction": "min",
        "timing_version": 2, "provenance": {"hardware": hardware},
        **({"reference_step_time_s": step_time, "time_to_target_reference_steps": seconds / step_time}
           if step_time else {})}))


def test_a_new_row_is_ranked_among_published_rows_and_tuned_baselines_on_one_machine(tmp_path):
    published, mine = tmp_path / "results", tmp_path / "runs"
    write_trial(published, "pub_fast", "self/study1", 1.0)
    write_trial(published, "pub_slow", "self/study1", 9.0)
    write_trial(published, "nadamw", "tuned/study1", 4.0)
    write_trial(published, "pub_external", "external/study1/trial1", 0.5)  # another ruleset: not on this board
    write_trial(mine, "mine", "self/study1", 2.0)
    result = compare.compare("mine", "self", "cpu", ["w1"], mine, published, False, leaderboard.Options(n_boot=10))
    assert list(result.board.times.sort_values("w1").index) == ["pub_fast", "mine", "nadamw", "pub_slow"]
    assert "2 published self submissions" in result.compared_with and "1 tuned baselines from" in result.compared_with
    assert "ranked on seconds, all on CPU A" in result.compared_with
    text = compare.ranked_rows(result)
    assert "**>> mine <<**" in text and text.splitlines()[2].startswith("| rank |")


def test_across_machines_the_rows_are_ranked_in_reference_steps(tmp_path):
    published, mine = tmp_path / "results", tmp_path / "runs"
    write_trial(published, "pub", "self/study1", 1.0, HW_A, step_time=0.01)       # 100 reference steps
    write_trial(published, "old_pub", "self/study1", 1.0, HW_A)                   # no reference step: left out
    write_trial(mine, "mine", "self/study1", 3.0, HW_B, step_time=0.05)           # 60 reference steps
    result = compare.compare("mine", "self", "cpu", ["w1"], mine, published, False, leaderboard.Options(n_boot=10))
    assert result.board.normalized and set(result.board.machines) == {"CPU A (1 threads) [aaaaaaaaaaaa]",
                                                                      "CPU B (1 threads) [bbbbbbbbbbbb]"}
    assert result.board.times.loc["mine", "w1"] == 60.0 and result.board.times.loc["pub", "w1"] == 100.0
    assert "reference steps across 2 machines" in result.compared_with
    assert "left out 1 trials" in result.compared_with and "old_pub" in result.compared_with


def test_submit_reruns_the_tuned_baselines_and_prints_the_ranked_board(tmp_path, data_dir, capsys):
    import shutil

    from harness.core.submission import SUBMISSIONS_DIR

    shutil.copytree(SUBMISSIONS_DIR / "adamw", tmp_path / "my_adamw")
    code = main(["submit", str(tmp_path / "my_adamw"), "tuning=self", "studies=1", "suite=[logreg_wine]", "preset=tiny",
                 "submit.baselines=rerun", f"submit.published_dir={tmp_path / 'none'}", f"results_dir={tmp_path / 'runs'}",
                 f"data_dir={data_dir}", "progress=false", "leaderboard.bootstrap=10", "device=cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "**>> my_adamw <<**" in out and "| rank |" in out
    for baseline in ("nadamw", "adamw", "sgd_momentum"):
        assert f"| {baseline} |" in out
    assert "3 tuned baselines re-timed on this machine" in out and "calibration ledger" in out


def test_bench_runs_the_tuned_baselines_with_an_estimate_first(tmp_path, data_dir, capsys):
    code = main(["bench", "preset=tiny", "suite=[logreg_wine]", f"results_dir={tmp_path}", f"data_dir={data_dir}",
                 "progress=false", "leaderboard.bootstrap=10", "device=cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    first = out.splitlines()[0]
    assert first.startswith("bench: 3 trials (nadamw, adamw, sgd_momentum on logreg_wine)") and "at most" in first
    assert "ruleset `tuned`" in out and all(f"| {name} |" in out for name in ("nadamw", "adamw", "sgd_momentum"))
    assert compare.has_reference_rows(tmp_path, "tiny") and not compare.has_reference_rows(tmp_path, "cpu")


def test_a_suite_without_brackets_names_the_valid_suites(capsys):
    assert main(["bench", "suite=logreg_wine"]) == 2
    err = capsys.readouterr().err
    assert "suite='logreg_wine' is neither a suite nor a list" in err and "suite=[logreg_wine]" in err
    assert len(err.strip().splitlines()) == 1
