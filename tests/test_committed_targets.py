"""The committed cpu targets (configs/targets/cpu.yaml) hold up against their own ledgers without a long run.

`calibrate` re-derives every committed entry from the committed ledger without running a trial (so the ledger
is complete and none of its lines is stale for today's workload and baseline code), the target is not met
early, and the fastest rerun, replayed for its first evaluations, retraces the curve its ledger line recorded.
Replaying only the start is what makes this cheap: the schedules follow step_hint, not max_steps, so a
truncated rerun walks the same trajectory, and the ledger holds the rest of the curve."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness.core import registry, targets
from harness.core.results import comparable
from harness.study import calibrate

PRESET = "cpu"
CALIBRATED = sorted(name for name in targets.read_targets(PRESET).get("workloads", {})
                    if calibrate.ledger_file(PRESET, name).exists())
#: Evaluations replayed per workload (the calibration grid is step_hint / 20 steps).
REPLAYED_EVALS = 2
#: How far a replay may drift from its ledger line: the ledger ran in another process, maybe on another CPU.
REPLAY_RTOL = 2e-3

REPLAY = """
import json, sys
from harness.core.runner import TrialSpec, run_trial
spec = TrialSpec(**json.loads(sys.argv[1]))
run_trial(spec, sys.argv[2], data_dir=sys.argv[3], device="cpu")
"""


def no_trial_may_run(specs):
    raise AssertionError(f"the committed ledger lacks {len(specs)} trials, e.g. {specs[0].submission} "
                         f"{specs[0].hyperparameters} seed {specs[0].seed}")


@pytest.fixture
def ledger_copy(tmp_path, monkeypatch):
    """The committed targets in a temporary folder, so re-deriving an entry rewrites the copy only."""
    folder = tmp_path / "targets"
    shutil.copytree(targets.targets_dir(), folder)
    monkeypatch.setenv("TIMETRIAL_TARGETS_DIR", str(folder))
    return folder


def test_every_committed_target_has_a_ledger():
    committed = set(targets.read_targets(PRESET)["workloads"])
    assert committed and committed == set(CALIBRATED), sorted(committed - set(CALIBRATED))


@pytest.mark.parametrize("workload", CALIBRATED)
def test_calibrate_rederives_the_committed_entry_from_its_ledger(workload, ledger_copy, tmp_path, data_dir):
    committed = targets.entry(workload, PRESET)
    derived = calibrate.calibrate(workload, PRESET, no_trial_may_run, tmp_path / "runs", data_dir=data_dir,
                                  log=lambda line: None)
    assert derived["target_value"] == committed["target_value"]
    assert derived["tuned"] == committed["tuned"]
    for key in ("best_submission", "best_hyperparameters", "rerun_best_metrics", "rerun_steps_to_target"):
        assert derived["provenance"][key] == committed["provenance"][key], key
    fastest = targets.fastest_rerun(workload, PRESET)
    assert fastest is not None, "no rerun of the best point met the target"
    # Not met early: the target sits where the tuned curve flattens, in the last half of the horizon.
    assert 0.5 * committed["step_hint"] <= fastest.steps_to_target <= committed["step_hint"]


def fastest_rerun_line(workload: str) -> calibrate.LedgerLine:
    fastest = targets.fastest_rerun(workload, PRESET)
    wanted = comparable(fastest.hyperparameters)
    return next(line for line in calibrate.read_ledger(PRESET, workload) if line.role == "rerun"
                and line.seed == fastest.seed and line.submission == fastest.submission
                and comparable(line.hyperparameters) == wanted)


@pytest.mark.slow
@pytest.mark.parametrize("workload", CALIBRATED)
def test_the_fastest_rerun_replays_the_start_of_its_ledger_curve(workload, tmp_path, data_dir):
    """Each replay runs 10% of step_hint (5-20 s with one thread), in a process without the suite's
    MKL_CBWR=COMPATIBLE, as `timetrial calibrate` ran (it also doubles a gpt2 step's time)."""
    line = fastest_rerun_line(workload)
    step_hint = registry.make_workload(workload, PRESET).step_hint
    grid = calibrate.step_grid(step_hint)
    spec = dataclasses.replace(
        calibrate.tuning_specs(workload, PRESET, step_hint, [line.submission], 1, 0)[0],
        hyperparameters=line.hyperparameters, seed=line.seed, ruleset=calibrate.RERUN_RULESET,
        max_steps=REPLAYED_EVALS * grid)
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    done = subprocess.run([sys.executable, "-c", REPLAY, json.dumps(dataclasses.asdict(spec)), str(tmp_path), str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    metric = registry.make_workload(workload, PRESET).target_metric
    evals = [json.loads(row) for row in (spec.trial_dir(tmp_path) / "evals.jsonl").read_text().splitlines()]
    replayed = {row["step"]: row[metric] for row in evals}
    recorded = dict(line.curve)
    steps = [grid * k for k in range(1, REPLAYED_EVALS + 1)]
    assert [replayed[s] for s in steps] == pytest.approx([recorded[s] for s in steps], rel=REPLAY_RTOL)
