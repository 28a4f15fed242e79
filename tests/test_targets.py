"""Targets per preset (harness/core/targets.py), budgets per machine (harness/core/machine.py), the step-based
calibration protocol (harness/study/calibrate.py), the thread policy, contention marks and `describe`."""

import dataclasses
import json
import statistics
import subprocess
import sys
import time

import pytest
import torch
import yaml

from harness.commands.cli import main
from harness.core import contention, machine, provenance, runner, targets
from harness.core.registry import make_workload, workload_class
from harness.core.runner import TrialSpec, run_trial
from harness.core.targets import TargetsFileError
from harness.study import calibrate, sweep
from harness.study.config import load_config


@pytest.fixture
def targets_dir(tmp_path, monkeypatch):
    folder = tmp_path / "targets"
    monkeypatch.setenv("TIMETRIAL_TARGETS_DIR", str(folder))
    return folder


def fake_hardware(monkeypatch, fingerprint: str, label: str):
    """Every reader of the hardware in the runner sees another machine."""
    real = runner.hardware

    def other(device):
        return {**real(device), "fingerprint": fingerprint, "label": label}

    monkeypatch.setattr(runner, "hardware", other)
    monkeypatch.setattr(provenance, "hardware", other)  # what result.json records


def store_step_time(workload_name: str, preset: str, fingerprint: str, step_time_s: float,
                    probe_s: float | None = None) -> None:
    """A measurement in the machine file's current speed calibration ("" for a new file: as before they were kept)."""
    workload = make_workload(workload_name, preset)
    machine.store_step_time(fingerprint, machine.StepTime(
        workload=workload_name, preset=preset, step_time_s=step_time_s,
        definition=runner.reference_definition(workload, {}), reference="nadamw", hyperparameters={}, steps=20,
        contended=False, cpu_share=1.0, measured_at=machine.now_iso(), hardware={"label": fingerprint},
        probe_s=probe_s, speed_calibration=machine.current_speed_calibration(fingerprint)))


def test_an_entry_sets_the_target_of_its_preset_only(targets_dir):
    step_hint = workload_class("dlrm_small").sizes["tiny"].step_hint
    targets.write_entry("tiny", "dlrm_small", {"target_value": 1.5, "step_hint": step_hint, "provenance": {}})
    assert make_workload("dlrm_small", "tiny").target_value == 1.5
    assert make_workload("dlrm_small", "cpu").size == workload_class("dlrm_small").sizes["cpu"]
    assert make_workload("dlrm_small_embed_init", "tiny").target_value == workload_class(
        "dlrm_small_embed_init").sizes["tiny"].target_value
    targets.write_entry("tiny", "gpt2", {"target_value": 3.0, "step_hint": workload_class("gpt2").sizes["tiny"].step_hint})
    assert make_workload("dlrm_small", "tiny").target_value == 1.5  # the second entry kept the first
    assert sorted(yaml.safe_load(targets.targets_file("tiny").read_text())["workloads"]) == ["dlrm_small", "gpt2"]


def test_an_entry_set_for_another_step_hint_is_stale(targets_dir):
    code = workload_class("gpt2").sizes["tiny"]
    targets.write_entry("tiny", "gpt2", {"target_value": 1.0, "step_hint": code.step_hint + 1})
    with pytest.warns(UserWarning, match="set with step_hint"):
        assert make_workload("gpt2", "tiny").target_value == code.target_value


def test_bad_targets_file_names_the_key_and_the_valid_ones(targets_dir):
    targets_dir.mkdir()
    targets.targets_file("tiny").write_text(yaml.safe_dump({"workloads": {"gpt2": {"target": 1.0}}}))
    with pytest.raises(TargetsFileError, match=r"workloads\.gpt2 has unknown keys \['target'\].*valid keys"):
        make_workload("gpt2", "tiny")


def test_another_machine_changes_the_budget_never_the_target(monkeypatch, tmp_path, data_dir, targets_dir):
    """Faked fingerprints with other measured step times: the budget follows step_hint x step time x
    BUDGET_FACTOR, the target stays the preset's."""
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", max_steps=50)
    records = {}
    for fingerprint, step_time in (("fastmachine1", 1e-3), ("slowmachine2", 4e-3)):
        store_step_time("logreg_wine", "cpu", fingerprint, step_time)
        fake_hardware(monkeypatch, fingerprint, fingerprint)
        records[fingerprint] = run_trial(spec, tmp_path / fingerprint, data_dir=data_dir, device="cpu")
    fast, slow = records["fastmachine1"], records["slowmachine2"]
    step_hint = workload_class("logreg_wine").sizes["cpu"].step_hint
    assert fast.budget_s == pytest.approx(round(step_hint * 1e-3 * machine.BUDGET_FACTOR, 1))
    assert slow.budget_s == pytest.approx(4 * fast.budget_s, rel=0.02)
    assert fast.target_value == slow.target_value == workload_class("logreg_wine").sizes["cpu"].target_value
    assert fast.reference_step_time_s == 1e-3 and slow.reference_step_time["hardware"]["label"] == "slowmachine2"


def test_an_unseen_machine_measures_its_step_time_once(monkeypatch, tmp_path, data_dir):
    fake_hardware(monkeypatch, "unseenmachine", "unseen")
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", max_steps=20)
    first = run_trial(spec, tmp_path / "a", data_dir=data_dir, device="cpu")
    cached = machine.all_step_times("unseenmachine")
    assert [m.workload for m in cached] == ["logreg_wine"] and cached[0].steps >= machine.MEASURED_STEPS
    # at least MIN_MEASURED_S of steady-state steps, capped at step_hint
    assert cached[0].steps * cached[0].step_time_s >= 0.5 * machine.MIN_MEASURED_S or cached[0].steps == 5000
    assert first.reference_step_time_s == cached[0].step_time_s
    # the clock probe kept beside it, and the trial's own against it (real timings: only their presence)
    assert cached[0].probe_s > 0 and first.clock_probe_s > 0 and first.clock_ratio > 0
    second = run_trial(spec, tmp_path / "b", data_dir=data_dir, device="cpu")
    assert second.reference_step_time["measured_at"] == cached[0].measured_at  # reused, not remeasured
    # a JAX trial's budget comes from the same PyTorch NAdamW measurement (once it was keyed by the JAX class,
    # so a board's PyTorch and JAX trials kept remeasuring it in turn, each with its own noise)
    jax_spec = TrialSpec("logreg_wine", "adamw_jax", preset="cpu", framework="jax", max_steps=20)
    jax_trial = run_trial(jax_spec, tmp_path / "c", data_dir=data_dir, device="cpu")
    assert jax_trial.framework == "jax" and jax_trial.reference_step_time["measured_at"] == cached[0].measured_at
    assert jax_trial.budget_s == first.budget_s and len(machine.all_step_times("unseenmachine")) == 1


def test_a_machine_that_runs_at_another_speed_than_its_budget_marks_the_trial(monkeypatch, tmp_path, data_dir, capfd):
    """The fingerprint is the same, the speed is not (a VM on a busier host): the clock probe, faked here, takes
    twice the time it took beside the reference step time, so the trial is marked contended and says why; a probe
    within MAX_CLOCK_RATIO is not a mark, and a reference measured before probes were kept gives no ratio."""
    fake_hardware(monkeypatch, "driftmachine", "drift machine")
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", max_steps=30)
    store_step_time("logreg_wine", "cpu", "driftmachine", 1e-3, probe_s=1e-3)
    for probe_s, ratio, moved in ((2e-3, 2.0, True), (1.1e-3, 1.1, False), (0.5e-3, 0.5, True)):
        monkeypatch.setattr(contention, "clock_probe_s", lambda: probe_s)
        record = run_trial(spec, tmp_path / str(probe_s), data_dir=data_dir, device="cpu")
        assert (record.clock_probe_s, record.clock_ratio) == (probe_s, ratio)
        assert (record.contended is True) == moved, record
        assert ("marked contended" in capfd.readouterr().err) == moved
    store_step_time("logreg_wine", "cpu", "driftmachine", 1e-3)  # an older cache entry: no probe kept
    record = run_trial(spec, tmp_path / "before-probes", data_dir=data_dir, device="cpu")
    assert record.clock_probe_s == 0.5e-3 and record.clock_ratio is None and record.contended is not True
    tiny = run_trial(dataclasses.replace(spec, preset="tiny"), tmp_path / "tiny", data_dir=data_dir, device="cpu")
    assert tiny.clock_probe_s is None and "clock_probe_s" not in tiny.to_json()  # no measured budget, no probe


def test_calibrate_speed_remeasures_and_prints_the_budget_and_the_probe(monkeypatch, capsys, data_dir):
    fake_hardware(monkeypatch, "calibratedmachine", "calibrated machine")
    store_step_time("logreg_wine", "cpu", "calibratedmachine", 9.0)  # an absurd cache entry, replaced
    monkeypatch.setattr(contention, "clock_probe_s", lambda: 2.5e-3)
    assert main(["calibrate-speed", "preset=cpu", "speed.workloads=[logreg_wine]", f"data_dir={data_dir}",
                 "device=cpu"]) == 0
    (measured,) = machine.all_step_times("calibratedmachine")
    assert measured.step_time_s < 1.0 and measured.probe_s == 2.5e-3
    started, header, row = capsys.readouterr().out.strip().splitlines()[-3:]
    assert "probe (ms)" in header and row.split()[:2] == ["logreg_wine", f"{measured.step_time_s:.4g}"]
    assert f"{measured.budget_s(5000):.1f}" in row and "2.500" in row
    # it started a speed calibration, and the measurement belongs to it
    assert measured.speed_calibration and started.startswith(f"speed calibration {measured.speed_calibration} of "
                                                             "calibratedmachine")
    assert machine.current_speed_calibration("calibratedmachine") == measured.speed_calibration


def test_a_new_speed_calibration_retires_the_earlier_measurements(monkeypatch, tmp_path, data_dir, publish_script):
    """A fingerprint that came back at another speed is calibrated again: the earlier calibration's measurement is
    no longer used (the next trial measures under the new one), each trial records its calibration, and the board
    in seconds splits by calibration while the board in reference steps merges them."""
    from harness.study import leaderboard

    fake_hardware(monkeypatch, "driftedmachine", "drifted machine")
    store_step_time("logreg_wine", "cpu", "driftedmachine", 9.0)  # a file from before calibrations were kept
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", max_steps=20, ruleset="self", study=1)
    before = run_trial(spec, tmp_path / "board" / "trials" / "before", data_dir=data_dir, device="cpu")
    assert before.reference_step_time_s == 9.0 and before.reference_step_time["speed_calibration"] == ""
    monkeypatch.setattr(machine, "now_iso", lambda: "2030-01-01T00:00:00+00:00")
    assert machine.start_speed_calibration("driftedmachine") == "2030-01-01T00:00:00+00:00"
    workload = make_workload("logreg_wine", "cpu")
    assert machine.cached_step_time("driftedmachine", "logreg_wine", "cpu",
                                    runner.reference_definition(workload, {})) is None
    after = run_trial(spec, tmp_path / "board" / "trials" / "after", data_dir=data_dir, device="cpu")
    assert after.reference_step_time_s < 1.0  # measured again, not the retired 9 s
    assert after.reference_step_time["speed_calibration"] == "2030-01-01T00:00:00+00:00"
    boards = leaderboard.build(tmp_path / "board", "cpu", "self")
    assert [board.speed_calibration for board in boards] == ["", "2030-01-01T00:00:00+00:00"]
    assert [board.fingerprint for board in boards] == ["driftedmachine"] * 2
    assert "[driftedmachine, speed calibration 2030-01-01T00:00:00+00:00]" in boards[1].title
    assert "speed calibration" not in boards[0].title
    published = publish_script.board_views(tmp_path / "board", "cpu", leaderboard.Options())
    assert [board.normalized for board in published] == [True, False, False]
    assert len(published[0].machines) == 2 and published[0].trials.shape[0] == 2


def test_a_resumed_board_adopts_only_its_current_speed_calibration(monkeypatch, tmp_path):
    """Recorded measurements fill a lost machine file from the latest calibration; a file whose calibration
    started since keeps it, so a publish rerun does not bring back the retired budgets."""
    workload = make_workload("logreg_wine", "cpu")

    def recorded(calibration: str, measured_at: str, step_time_s: float) -> dict:
        return dataclasses.asdict(machine.StepTime(
            workload="logreg_wine", preset="cpu", step_time_s=step_time_s,
            definition=runner.reference_definition(workload, {}), reference="nadamw", hyperparameters={}, steps=20,
            contended=False, cpu_share=1.0, measured_at=measured_at, hardware={"label": "x"},
            speed_calibration=calibration))

    old = recorded("2020-01-01T00:00:00+00:00", "2020-01-02T00:00:00+00:00", 2e-3)
    new = recorded("2021-01-01T00:00:00+00:00", "2021-01-02T00:00:00+00:00", 1e-3)
    (adopted,) = machine.adopt_recorded("lostfile", [new, old])
    assert adopted.step_time_s == 1e-3 and machine.current_speed_calibration("lostfile") == new["speed_calibration"]
    assert machine.adopt_recorded("lostfile", [old, new]) == []
    monkeypatch.setattr(machine, "now_iso", lambda: "2022-01-01T00:00:00+00:00")
    machine.start_speed_calibration("lostfile")
    assert machine.adopt_recorded("lostfile", [old, new]) == []  # neither is of the current calibration
    assert machine.cached_step_time("lostfile", "logreg_wine", "cpu", new["definition"]) is None


class Preempted(BaseException):
    """Stands in for SIGKILL: not an Exception, so the runner writes no result and the checkpoint stays."""


def test_a_resumed_trial_keeps_the_probes_taken_before_its_checkpoint(monkeypatch, tmp_path, data_dir):
    """Each clock reading is one second later, so a step costs 1 s of counted time: evals at steps 1, 11, ..., 91
    (checkpoints at every 2nd), preempted near step 100. Probes read 4 ms before the preemption and 1 ms after it:
    the resumed trial's median is over the 10 kept readings and its own 4 (at 101, 111, 120 and the end)."""
    fake_hardware(monkeypatch, "resumedmachine", "resumed machine")
    store_step_time("logreg_wine", "cpu", "resumedmachine", 1e-3, probe_s=1e-3)
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", stop_at_target=False, max_steps=120,
                     eval_period_steps=10, eval_period_s=1e9, budget_multiplier=1e6)

    def clock(preempt_after=None):
        readings = iter(range(10**9))

        def read():
            reading = next(readings)
            if preempt_after is not None and reading >= preempt_after:
                raise Preempted
            return float(reading)
        return read

    monkeypatch.setattr(contention, "clock_probe_s", lambda: 4e-3)
    with pytest.raises(Preempted):  # readings: 1 + 1 per step + 3 per eval: 131 is step 100
        run_trial(spec, tmp_path, data_dir=data_dir, clock_fn=clock(131), checkpoint_every_evals=2)
    monkeypatch.setattr(contention, "clock_probe_s", lambda: 1e-3)
    resumed = run_trial(spec, tmp_path, data_dir=data_dir, clock_fn=clock(), checkpoint_every_evals=2)
    assert resumed.resumed_from_steps == [91] and resumed.steps == 120
    assert resumed.clock_probe_s == 4e-3 and resumed.clock_ratio == 4.0 and resumed.contended is True


def test_the_clock_probe_takes_its_readings_apart_in_counted_time(monkeypatch):
    monkeypatch.setattr(contention, "clock_probe_s", iter([1.0, 2.0, 3.0, 4.0]).__next__)
    probe = contention.ClockProbe(reference_s=2.0)
    for counted_s in (0.0, 1.0, contention.PROBE_PERIOD_S - 0.1, contention.PROBE_PERIOD_S + 0.5):
        probe.take(counted_s)
    probe.take(contention.PROBE_PERIOD_S + 0.6, due_only=False)  # the trial's end
    assert probe.readings == [1.0, 2.0, 3.0] and probe.median_s() == 2.0 and probe.ratio() == 1.0
    assert not probe.moved() and contention.ClockProbe(reference_s=None).ratio() is None


def test_a_resumed_board_keeps_the_budgets_its_trials_recorded(monkeypatch, tmp_path, data_dir, publish_script):
    """The machine cache a board ran under is gone (a fresh checkout): publishing again takes the reference step
    time from the board's finished trials into the board's own machine folder, so a new trial there gets the
    old rows' budget instead of a remeasured one; the latest recorded measurement wins, a cached one stays."""
    fake_hardware(monkeypatch, "boardmachine", "board machine")
    monkeypatch.setenv("TIMETRIAL_MACHINE_DIR", str(tmp_path / "lost-cache"))
    store_step_time("logreg_wine", "cpu", "boardmachine", 2e-3)
    board = tmp_path / "board"
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", max_steps=10)
    old_row = run_trial(spec, board / "trials" / "old", data_dir=data_dir, device="cpu")
    publish_script.keep_board_budgets(board)
    assert machine.machine_dir() == board / "machines"
    (adopted,) = machine.all_step_times("boardmachine")
    assert adopted == machine.StepTime(**old_row.reference_step_time) and adopted.step_time_s == 2e-3
    new_row = run_trial(spec, board / "trials" / "new", data_dir=data_dir, device="cpu")
    assert new_row.budget_s == old_row.budget_s and new_row.reference_step_time == old_row.reference_step_time
    earlier = {**old_row.reference_step_time, "step_time_s": 1.0, "measured_at": "2000-01-01T00:00:00+00:00"}
    later = {**old_row.reference_step_time, "step_time_s": 3e-3, "measured_at": "2999-01-01T00:00:00+00:00"}
    assert machine.adopt_recorded("boardmachine", [later, earlier]) == []  # the folder has this definition
    assert [m.step_time_s for m in machine.adopt_recorded("othermachine", [earlier, later, earlier])] == [3e-3]


def test_step_based_trials_give_the_same_metrics_on_a_slower_clock(tmp_path, data_dir):
    """What makes calibration shareable across machines: evals fall on the step grid whatever the clock."""
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=60, eval_period_steps=20, step_based=True,
                     stop_at_target=False)
    ticks = iter(range(10**9))
    slow_clock = lambda: next(ticks) * 10.0  # noqa: E731  (every reading 10 s later)
    fast = run_trial(spec, tmp_path / "fast", data_dir=data_dir, device="cpu")
    slow = run_trial(spec, tmp_path / "slow", data_dir=data_dir, device="cpu", clock_fn=slow_clock)
    read = lambda root: [(r["step"], r["train_rel_subopt"]) for r in  # noqa: E731
                         map(json.loads, (spec.trial_dir(root) / "evals.jsonl").read_text().splitlines())]
    assert read(tmp_path / "fast") == read(tmp_path / "slow")
    assert [step for step, _ in read(tmp_path / "fast")] == [1, 20, 40, 60]
    assert fast.budget_s is None and slow.submission_time_s > 100 * fast.submission_time_s
    with pytest.raises(ValueError, match="step-based trial needs"):
        TrialSpec("logreg_wine", "adamw", step_based=True)


def test_the_preset_sets_the_thread_count_and_records_it(tmp_path, data_dir):
    torch.set_num_threads(2)
    record = run_trial(TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=5), tmp_path, data_dir=data_dir,
                       device="cpu")
    assert record.torch_threads == 1 and record.provenance["hardware"]["torch_threads"] == 1
    assert torch.get_num_threads() == 2  # restored for the caller


def test_contention_rule():
    alone = contention.assess(cpu_s=9.8, machine_busy=10.2, wall_s=10.0, torch_threads=1, cpu_count=2, device_type="cpu")
    beside_one_job = contention.assess(9.7, 19.7, 10.0, 1, 2, "cpu")  # the other core was busy: still our core
    starved = contention.assess(5.0, 20.0, 10.0, 1, 2, "cpu")
    crowded = contention.assess(19.0, 23.0, 10.0, 2, 2, "cpu")  # 2 threads, 0.4 cores of other work, none spare
    assert (alone.contended, beside_one_job.contended, starved.contended, crowded.contended) == (False, False, True, True)
    assert starved.cpu_share == 0.5 and starved.other_cores == 1.5
    assert contention.assess(0.1, 0.1, 0.2, 1, 2, "cpu").contended is None  # too short to judge


HOG = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def test_a_trial_beside_cpu_hogs_is_marked_contended(tmp_path, data_dir):
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=4_000, eval_period_steps=2_000,
                     step_based=True, stop_at_target=False)
    run_trial(dataclasses.replace(spec, max_steps=200), tmp_path / "warm", data_dir=data_dir, device="cpu")
    hogs = [subprocess.Popen([sys.executable, "-c", HOG.format(seconds=60)]) for _ in range(3)]
    try:
        time.sleep(0.5)
        record = run_trial(spec, tmp_path / "hogged", data_dir=data_dir, device="cpu")
    finally:
        for hog in hogs:
            hog.kill()
    assert record.contended is True, record
    assert record.cpu_share < contention.MIN_CPU_SHARE and record.cpu_time_s > 0
    assert record.other_cores is None or record.other_cores > 1.0


# ---- the calibration protocol ----------------------------------------------------------------------------

def calibrate_wine(tmp_path, data_dir, **knobs):
    """The protocol at a small scale: logreg_wine `tiny` (400 steps), 2 baselines."""
    def run_specs(specs):
        return [run_trial(spec, tmp_path / "runs", data_dir=data_dir, device="cpu") for spec in specs]

    messages = []
    options = dict(baselines=["adamw", "sgd_momentum"], points=3, reruns=3, data_dir=data_dir, log=messages.append)
    entry = calibrate.calibrate("logreg_wine", "tiny", run_specs, tmp_path / "runs", **{**options, **knobs})
    return entry, messages


def test_calibrate_sets_the_target_from_the_median_of_the_reruns(tmp_path, data_dir, targets_dir):
    entry, messages = calibrate_wine(tmp_path, data_dir)
    ledger = calibrate.read_ledger("tiny", "logreg_wine")
    tune = [line for line in ledger if line.role == "tune"]
    reruns = [line for line in ledger if line.role == "rerun"]
    assert len(tune) == 6 and len(reruns) == 3 and {line.seed for line in reruns} == {1, 2, 3}
    best = min(tune, key=lambda line: line.best_metric)
    assert all(line.hyperparameters == best.hyperparameters and line.submission == best.submission for line in reruns)
    assert entry["target_value"] == pytest.approx(statistics.median(line.best_metric for line in reruns))
    for name in ("adamw", "sgd_momentum"):
        mine = [line for line in tune if line.submission == name]
        assert entry["tuned"][name] == min(mine, key=lambda line: line.best_metric).hyperparameters
    step_hint = workload_class("logreg_wine").sizes["tiny"].step_hint
    assert entry["step_hint"] == step_hint and all(line.curve[-1][0] == step_hint for line in ledger)
    assert [step for step, _ in reruns[0].curve][:3] == [1, 20, 40]  # the fixed grid: step_hint / 20
    hits = entry["provenance"]["rerun_steps_to_target"]
    for line, hit in zip(reruns, hits):
        assert hit == next((step for step, value in line.curve if value <= entry["target_value"]), None)
    assert all(line.machine["fingerprint"] for line in ledger)
    # the workload now uses it; another run of the command runs nothing and writes the same target
    assert make_workload("logreg_wine", "tiny").target_value == entry["target_value"]
    again, messages = calibrate_wine(tmp_path, data_dir)
    assert again["target_value"] == entry["target_value"]
    assert any("6 of 6 trials in the ledger; running 0" in m for m in messages)


def test_the_estimate_uses_the_ledgers_steps_to_target(tmp_path, data_dir, targets_dir, monkeypatch):
    entry, _ = calibrate_wine(tmp_path, data_dir)
    # `tiny` has a fixed budget and no measured step time; give it one so the ledger's steps count
    monkeypatch.setattr(sweep, "apply_budget", lambda *args: {"reference_step_time_s": 0.01})
    cfg = load_config([f"data_dir={data_dir}", "device=cpu"])
    point = entry["provenance"]["best_hyperparameters"]
    ran = TrialSpec("logreg_wine", entry["provenance"]["best_submission"], preset="tiny", hyperparameters=point)
    unseen = dataclasses.replace(ran, hyperparameters={**point, "learning_rate": 1234.5})
    budget = make_workload("logreg_wine", "tiny").max_allowed_runtime_sec
    assert sweep.estimate([unseen], cfg) == sweep.TimeEstimate((budget,), budget, 0)
    hits = calibrate.ledger_steps_to_target(calibrate.read_ledger("tiny", "logreg_wine"), ran.submission, point,
                                            entry["target_value"], "min")
    assert len(hits) == 4 and any(h is not None for h in hits)  # the tuning trial and its 3 reruns
    known = sweep.estimate([ran, unseen], cfg)
    expected = sum(budget if h is None else min(budget, h * 0.01) for h in hits) / len(hits)
    assert known == sweep.TimeEstimate((pytest.approx(expected), budget), 2 * budget, 1)
    assert sweep.longest_first([ran, unseen], known) == [unseen, ran]
    assert "1 trials expected from the calibration ledger" in known.describe(workers=2)


def test_calibration_shards_across_machines_through_the_ledger(tmp_path, data_dir, targets_dir):
    with pytest.raises(calibrate.CalibrationIncomplete, match="not in .*logreg_wine.jsonl yet"):
        calibrate_wine(tmp_path / "machine_a", data_dir, shard="0/2")
    assert len(calibrate.read_ledger("tiny", "logreg_wine")) == 3
    # the ledger travels (git); lines from another machine count as done
    path = calibrate.ledger_file("tiny", "logreg_wine")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**row, "machine": {**row["machine"], "fingerprint": "machine-a"}}) + "\n"
                            for row in rows))
    with pytest.raises(calibrate.CalibrationIncomplete):  # tuning done, reruns split again
        calibrate_wine(tmp_path / "machine_b", data_dir, shard="1/2")
    entry, _ = calibrate_wine(tmp_path / "machine_b", data_dir)
    assert "machine-a" in " ".join(entry["provenance"]["machines"]) and entry["provenance"]["trials"] == 9


def test_a_changed_submission_is_not_reused_by_calibration(tmp_path, data_dir, targets_dir):
    calibrate_wine(tmp_path, data_dir, baselines=["adamw"], points=2, reruns=1)
    path = calibrate.ledger_file("tiny", "logreg_wine")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**row, "submission_source_hash": "old"}) + "\n" for row in rows))
    _, messages = calibrate_wine(tmp_path, data_dir, baselines=["adamw"], points=2, reruns=1)
    assert any("0 of 2 trials in the ledger; running 2" in m for m in messages)


def test_calibrate_command_reports_bad_knobs(capsys, targets_dir):
    assert main(["calibrate", "workload=logreg_wine", "preset=tiny", "calibrate.shard=3/2"]) == 2
    assert "calibrate.shard='3/2' is not valid" in capsys.readouterr().err
    with pytest.raises(ValueError, match="points >= 1"):
        calibrate.calibrate("logreg_wine", "tiny", lambda specs: [], "runs", points=0)


def test_describe_shows_what_a_person_needs(capsys, data_dir, targets_dir):
    assert main(["describe", "workload=logreg_wine", "preset=cpu", f"data_dir={data_dir}", "device=cpu"]) == 0
    out = capsys.readouterr().out
    for expected in ("parameters", "train 142 examples, validation 36", "train_rel_subopt (lower is better)",
                     "provisional", "step_hint  5,000", "1 torch thread(s)", "reference step", "budget",
                     "zero weights"):
        assert expected in out, (expected, out)


def test_normalized_time_agrees_across_a_faked_slower_clock(monkeypatch, tmp_path, data_dir, publish_script):
    """The same trial on a machine whose clock runs 3x slower (its reference step measured on that clock
    too): seconds differ 3x, time in reference steps agrees, and a normalized board merges both machines.
    The clocks tick a fixed amount per reading, not with the wall: the runner reads its clock the same
    number of times in both trials, so the figures are exact on a loaded machine too (a wall-clock version
    of this test failed once with two test workers beside a calibration)."""
    import itertools
    import shutil

    from harness.study import leaderboard

    # ruleset self, study 1: a row of the published board (scripts/publish_leaderboard.py), checked at the end
    spec = TrialSpec("logreg_wine", "adamw", preset="cpu", eval_period_steps=100, eval_period_s=1e9,
                     ruleset="self", study=1)
    records = {}
    for fingerprint, factor in (("onexclock", 1.0), ("threexclock", 3.0)):
        fake_hardware(monkeypatch, fingerprint, f"machine {fingerprint}")
        readings = itertools.count()
        clock = (lambda f, n: lambda: f * 1e-3 * next(n))(factor, readings)
        records[fingerprint] = run_trial(spec, tmp_path / fingerprint, data_dir=data_dir, device="cpu", clock_fn=clock)
        shutil.copytree(spec.trial_dir(tmp_path / fingerprint), tmp_path / "merged" / "trials" / fingerprint)
    fast, slow = records["onexclock"], records["threexclock"]
    assert fast.status == slow.status == "reached" and fast.steps_to_target == slow.steps_to_target
    assert slow.time_to_target_s / fast.time_to_target_s == pytest.approx(3.0, rel=1e-9)
    assert slow.reference_step_time_s / fast.reference_step_time_s == pytest.approx(3.0, rel=1e-9)
    assert slow.time_to_target_reference_steps == pytest.approx(fast.time_to_target_reference_steps, rel=1e-9)
    assert len(leaderboard.build(tmp_path / "merged", "cpu")) == 2  # one board per machine by default
    merged = leaderboard.build(tmp_path / "merged", "cpu", options=leaderboard.Options(normalized=True))
    assert len(merged) == 1 and len(merged[0].machines) == 2 and "normalized time" in merged[0].title
    expected = min(fast.time_to_target_reference_steps, slow.time_to_target_reference_steps)
    assert merged[0].times.loc["adamw", "logreg_wine"] == pytest.approx(expected)
    assert "logreg_wine [ref steps]" in merged[0].table.columns
    published = publish_script.board_views(tmp_path / "merged", "cpu", leaderboard.Options())
    assert [board.normalized for board in published] == [True, False, False]  # a board resumed elsewhere
    assert publish_script.board_views(tmp_path / "onexclock", "cpu", leaderboard.Options())[0].normalized is False
