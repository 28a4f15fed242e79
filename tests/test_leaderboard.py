"""The leaderboard on hand-made results trees (no training): grouping by hardware and ruleset,
median over studies, variant rule, steps score, speedup, and the written md/csv/html."""

import base64
import dataclasses
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.commands import cli, report
from harness.core.results import (EVALS_FILE, RESULT_FILE, TrialRecord, append_jsonl, legacy_placement, read_result,
                                   write_result)
from harness.study import leaderboard

HW_A = {"fingerprint": "aaaaaaaaaaaa", "label": "CPU A (2 threads)"}
HW_B = {"fingerprint": "bbbbbbbbbbbb", "label": "GPU B"}
BUDGET = 30.0


def write_trial(root: Path, submission: str, workload: str, tag: str, seconds: float | None, steps: int | None = None,
                hardware=HW_A, variant_of: str | None = None, seed: int = 0, preset: str = "cpu",
                spec: dict | None = None) -> None:
    """One trial directory as the runner writes it; seconds=None is a miss."""
    trial_dir = root / "trials" / workload / submission / preset / f"{tag}-seed{seed}{'-spec' if spec else ''}"
    reached = seconds is not None
    write_result(trial_dir, TrialRecord(**{
        "workload": workload, "submission": submission, "preset": preset, "seed": seed, "tag": tag,
        **dataclasses.asdict(legacy_placement(tag)), "status": "reached" if reached else "budget", "reached_target": reached,
        "time_to_target_s": seconds, "steps_to_target": (steps if steps is not None else int(seconds * 10)) if reached else None,
        "budget_s": BUDGET, "variant_of": variant_of, "target_metric": "loss", "target_value": 0.1,
        "target_direction": "min", "provenance": {"hardware": hardware}, **({"spec": spec} if spec else {})}))
    end = seconds if reached else BUDGET
    rows = [{"step": k, "submission_time_s": end * k / 4, "loss": 1.0 / (1 + 9 * k / 4)} for k in range(5)]
    append_jsonl(trial_dir / EVALS_FILE, rows)


@pytest.fixture
def tree(tmp_path):
    """Self-tuning, 3 studies, on hardware A; times chosen so the answer is known:
    w1: fast [2, 4, 3] -> 3 s, slow [6, 6, None] -> 6 s (r = 2);
    w2: fast [None, None, 1] -> miss, slow [5, 5, 5] -> 5 s;
    w2_v (variant of w2): fast 1 s, slow misses in 2 of 3 studies -> slow's w2 time does not count.
    """
    def study(submission, workload, values, variant_of=None, steps=None):
        for k, seconds in enumerate(values, start=1):
            write_trial(tmp_path, submission, workload, f"self/study{k}", seconds, variant_of=variant_of,
                        steps=steps[k - 1] if steps else None, seed=k)

    study("fast", "w1", [2, 4, 3], steps=[200, 400, 300])
    study("slow", "w1", [6, 6, None], steps=[30, 30, None])  # fewer steps, more seconds
    study("fast", "w2", [None, None, 1])
    study("slow", "w2", [5, 5, 5])
    study("fast", "w2_v", [1, 1, 1], variant_of="w2")
    study("slow", "w2_v", [1, None, None], variant_of="w2")
    write_trial(tmp_path, "other_hw", "w1", "self/study1", 0.5, hardware=HW_B)  # must not join hardware A's board
    write_trial(tmp_path, "fast", "w1", "bench", 0.1)  # another ruleset: its own board
    return tmp_path


def board_for(boards, fingerprint, ruleset):
    (board,) = [b for b in boards if b.fingerprint == fingerprint and b.ruleset == ruleset]
    return board


def test_boards_never_mix_hardware_or_rulesets(tree):
    boards = leaderboard.build(tree, "cpu", options=leaderboard.Options(n_boot=20))
    assert sorted((b.fingerprint, b.ruleset) for b in boards) == [
        ("aaaaaaaaaaaa", "bench"), ("aaaaaaaaaaaa", "self"), ("bbbbbbbbbbbb", "self")]
    a = board_for(boards, HW_A["fingerprint"], "self")
    assert sorted(a.table.index) == ["fast", "slow"]
    assert "CPU A (2 threads)" in a.title and "aaaaaaaaaaaa" in a.title
    assert list(board_for(boards, HW_B["fingerprint"], "self").table.index) == ["other_hw"]
    assert leaderboard.build(tree, "tiny") == []


def test_scores_with_and_without_the_variant_rule(tree):
    options = leaderboard.Options(n_boot=50, reference="slow")
    table = board_for(leaderboard.build(tree, "cpu", "self", options), HW_A["fingerprint"], "self").table
    assert table.at["fast", "w1 [s]"] == 3 and table.at["slow", "w1 [s]"] == 6
    assert table.at["fast", "w2 [s]"] == float("inf") and table.at["slow", "w2 [s]"] == 5
    # Scored: w1, w2 (w2_v only gates w2). Rule on: slow missed w2_v, so nobody has w2.
    # fast = (1 + 0)/2, slow = (2/3 + 0)/2.
    assert table.at["fast", "score"] == pytest.approx(0.5)
    assert table.at["slow", "score"] == pytest.approx(1 / 3)
    assert list(table.index) == ["fast", "slow"]  # ranked by score
    assert table.at["fast", "misses"] == 1 and table.at["slow", "misses"] == 1  # slow: w2 by the variant rule
    # Steps: w1 fast median 300, slow 30 -> slow r=1, fast r=10 (> r_max).
    assert table.at["slow", "steps_score"] == pytest.approx(0.5)
    assert table.at["fast", "steps_score"] == pytest.approx(0.0)
    # Speedup vs slow on the scored table, misses at the 30 s budget: w1 6/3, w2 30/30 -> sqrt(2).
    assert table.at["fast", "speedup_vs_slow"] == pytest.approx(2 ** 0.5)
    for name in ("score", "steps_score", "speedup_vs_slow"):  # every statistic has its bootstrap CI
        assert (table[f"{name}_low"] <= table[name] + 1e-12).all() and (table[name] <= table[f"{name}_high"] + 1e-12).all()
    assert table.at["slow", "speedup_vs_slow_low"] == table.at["slow", "speedup_vs_slow_high"] == pytest.approx(1.0)

    algoperf = leaderboard.Options(n_boot=20, profile_points=100)
    board = board_for(leaderboard.build(tree, "cpu", "self", algoperf), HW_A["fingerprint"], "self")
    assert board.table.at["fast", "score"] == pytest.approx(0.5)  # r = 1: no discretisation error
    assert abs(board.table.at["slow", "score"] - 1 / 3) <= 1 / 198
    assert "trapezoid on 100 taus" in report.note(board, algoperf)

    off = leaderboard.Options(n_boot=20, variant_rule=False)
    table = board_for(leaderboard.build(tree, "cpu", "self", off), HW_A["fingerprint"], "self").table
    assert table.at["slow", "score"] == pytest.approx((2 / 3 + 1) / 2)  # slow's w2 counts (fast missed it)


def test_leaderboard_command_writes_md_csv_and_self_contained_html(tree, capsys):
    assert cli.main(["leaderboard", f"results_dir={tree}", "leaderboard.bootstrap=20",
                     "leaderboard.reference=slow"]) == 0
    markdown = (tree / "leaderboard.md").read_text()
    assert "hardware: CPU A (2 threads) [aaaaaaaaaaaa]" in markdown and "hardware: GPU B" in markdown
    assert "| fast | 0.5 |" in markdown and "miss" in markdown
    csv = pd.read_csv(tree / "leaderboard.csv")
    assert set(csv["fingerprint"]) == {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}
    assert len(csv) == 4  # fast+slow (self), fast (bench), other_hw
    page = (tree / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 * 3  # profile, bars, curves for each of the three boards
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert "wrote" in capsys.readouterr().out


def test_figures_render(tree):
    board = board_for(leaderboard.build(tree, "cpu", "self", leaderboard.Options(n_boot=5)), HW_A["fingerprint"], "self")
    options = leaderboard.Options()
    figure = report.curves_figure(board)
    lines = [line for ax in figure.axes for line in ax.get_lines()]
    assert len(lines) >= 6 * 3  # every trial of the six cells has a curve (plus target lines)
    png = report.figure_png(report.profile_figure(board, options))
    assert png.startswith(b"\x89PNG")
    bars = report.time_bars_figure(board)
    assert len([ax for ax in bars.axes if ax.get_visible()]) == 3  # w1, w2, w2_v
    report.figure_png(bars)
    report.figure_png(figure)


def test_empty_results_tree(tmp_path):
    assert leaderboard.build(tmp_path) == []
    paths = report.write([], tmp_path)
    assert "(no results)" in paths[0].read_text()


def test_trials_off_the_ruleset_get_their_own_board(tree):
    """`reproduce` writes self-tuning-tagged trials with a step cap or a x10 budget: they never join
    the ruleset's board, but get boards of their own that say what differs."""
    write_trial(tree, "capped", "w1", "self/study1", 0.5, spec={"budget_multiplier": 1.5, "max_steps": 600})
    write_trial(tree, "long", "w1", "self/study1", 0.5, spec={"budget_multiplier": 15.0, "max_steps": None})
    write_trial(tree, "fast", "w1", "self/study1", 0.1, spec={"budget_multiplier": 15.0, "max_steps": 600})
    write_trial(tree, "standard", "w1", "self/study1", 2.0,
                spec={"budget_multiplier": 1.5, "max_steps": None, "hyperparameters": {}})
    write_trial(tree, "pinned", "w1", "self/study1", 0.2,  # a baseline at a paper's settings: not self-tuning
                spec={"budget_multiplier": 1.5, "max_steps": None, "hyperparameters": {"learning_rate": 0.1}})
    write_trial(tree, "tuned", "w1", "external/study1/trial1", 1.0,  # external trials always carry their point
                spec={"budget_multiplier": 1.0, "max_steps": None, "hyperparameters": {"learning_rate": 0.1}})
    write_trial(tree, "fast", "w1", "bench", 0.05, seed=7, spec={"budget_multiplier": 1.0, "max_steps": None})
    boards = leaderboard.build(tree, "cpu", options=leaderboard.Options(n_boot=5))
    mine = {(b.ruleset, b.conditions): b for b in boards if b.fingerprint == HW_A["fingerprint"]}
    assert sorted(mine) == [("bench", ""), ("external", ""), ("self", ""), ("self", "budget x10 the ruleset's"),
                            ("self", "hyperparameters set"), ("self", "step cap"),
                            ("self", "step cap, budget x10 the ruleset's")]
    assert list(mine["self", "hyperparameters set"].table.index) == ["pinned"]
    assert list(mine["external", ""].table.index) == ["tuned"]
    standard = mine["self", ""].table
    assert sorted(standard.index) == ["fast", "slow", "standard"]
    assert standard.at["fast", "w1 [s]"] == 3 and standard.at["standard", "w1 [s]"] == 2
    assert list(mine["self", "step cap"].table.index) == ["capped"]
    assert "off the ruleset: step cap" in mine["self", "step cap"].title
    assert "off the ruleset" not in mine["self", ""].title
    assert mine["bench", ""].table.at["fast", "w1 [s]"] == pytest.approx(0.075)  # seeds 0 and 7


def test_a_workload_never_run_reads_not_run_and_scores_as_a_miss(tree):
    for study in (1, 2, 3):
        write_trial(tree, "partial", "w1", f"self/study{study}", 1.0)
    options = leaderboard.Options(n_boot=5)
    board = board_for(leaderboard.build(tree, "cpu", "self", options), HW_A["fingerprint"], "self")
    table = board.table
    assert math.isnan(table.at["partial", "w2 [s]"]) and table.at["partial", "w1 [s]"] == 1
    assert table.at["partial", "not_run"] == 1 and table.at["fast", "not_run"] == 0
    assert table.at["partial", "misses"] == 1  # w2 counts against it
    row = next(line for line in report.render_markdown([board], options).splitlines() if "| partial |" in line)
    assert "not run" in row and "miss" not in row.replace("not run", "")


def test_contended_trials_are_counted_on_the_board_and_can_be_left_out(tmp_path):
    for study, (fast_seconds, contended) in enumerate(((1.0, True), (2.0, False), (3.0, False)), start=1):
        write_trial(tmp_path, "fast", "w1", f"self/study{study}", fast_seconds, seed=study)
        record_file = next((tmp_path / "trials" / "w1" / "fast").rglob(f"self/study{study}-seed{study}/{RESULT_FILE}"))
        record = read_result(record_file.parent)
        write_result(record_file.parent, dataclasses.replace(record, contended=contended,
                                                             cpu_share=0.5 if contended else 0.99))
        write_trial(tmp_path, "slow", "w1", f"self/study{study}", 5.0, seed=study)
    flagged = board_for(leaderboard.build(tmp_path, "cpu", "self"), HW_A["fingerprint"], "self")
    assert flagged.table.loc["fast", "contended"] == 1 and flagged.table.loc["slow", "contended"] == 0
    assert flagged.times.loc["fast", "w1"] == 2.0  # median of 1, 2, 3
    cleaned = board_for(leaderboard.build(tmp_path, "cpu", "self", leaderboard.Options(exclude_contended=True)),
                        HW_A["fingerprint"], "self")
    assert cleaned.table.loc["fast", "contended"] == 0 and cleaned.times.loc["fast", "w1"] == 2.5
    assert "contended" in report.render_markdown([flagged])


def test_step_counts_print_as_whole_numbers(tree):
    board = board_for(leaderboard.build(tree, "cpu", "self"), HW_A["fingerprint"], "self")
    text = report.render_markdown([board])
    assert "| 300 |" in text and "e+0" not in text.split("| submission |")[1]


def test_publish_records_the_machine_its_trials_ran_on(tmp_path, data_dir, monkeypatch, publish_script):
    """scripts/publish_leaderboard.py on the tiny logistic suite: publish.json names the hardware the trials
    recorded (one torch thread, the preset's), not the publishing process's (here two threads); a second
    invocation reuses every trial and says it ran none."""
    import json

    import torch

    publish = publish_script
    monkeypatch.setenv("TIMETRIAL_MACHINE_DIR", str(tmp_path / "machines"))
    arguments = ["--preset", "tiny", "--family", "logreg", "--submissions", "adamw", "--studies", "1",
                 "--results-dir", str(tmp_path / "results"), "--data-dir", data_dir]
    torch.set_num_threads(2)  # the publishing process; the autouse fixture restores one thread afterwards
    assert publish.main(arguments) == 0
    recorded = {read_result(file.parent).provenance["hardware"]["fingerprint"]
                for file in (tmp_path / "results" / "trials").rglob(RESULT_FILE)}
    runs = json.loads((tmp_path / "results" / "publish.json").read_text())
    (key, run), = runs.items()
    assert len(recorded) == 1 and key == f"{recorded.pop()} logreg"
    assert [machine["torch_threads"] for machine in run["hardware"]] == [1] and run["trials_run"] == run["trials"] > 0
    assert publish.main(arguments) == 0
    assert json.loads((tmp_path / "results" / "publish.json").read_text())[key]["trials_run"] == 0
