"""Data-parallel trials (`nproc_per_node=2`, Gloo on CPU; harness/core/distributed.py): two ranks follow
one process with the same global batch, rank 0 alone writes the one result, a run whose rank 0 is killed
resumes from its checkpoint, and a crash in one rank fails the trial, naming that rank, instead of hanging it."""

import dataclasses
import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.core import checkpoint, results
from harness.core.runner import TrialSpec, run_trial
from harness.study.config import load_config, trial_spec

REPO = Path(__file__).resolve().parent.parent
FAULTS = str(REPO / "tests" / "fixtures" / "ddp_faults" / "submission.py")
HP = {"learning_rate": 0.01, "one_minus_beta1": 0.1, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 1e-4,
      "warmup_factor": 0.05}
#: relative tolerance on each eval's validation loss, two ranks against one process (docs/scale_out.md): GPT
#: differs by float summation order only (measured 2e-7); ResNet's BatchNorm normalises each rank's half of
#: the batch with that half's statistics (measured 1.3%)
TOLERANCE = {"gpt2": 1e-5, "resnet": 0.05}


def tiny_spec(workload: str, nproc_per_node: int = 2, submission: str = "adamw") -> TrialSpec:
    return TrialSpec(workload=workload, submission=submission, preset="tiny", hyperparameters=HP, stop_at_target=False,
                     max_steps=20, eval_period_steps=5, step_based=True, nproc_per_node=nproc_per_node)


def curve(spec: TrialSpec, results_dir: Path) -> list[tuple[int, float]]:
    return [(row["step"], row["validation_loss"]) for row in
            results.read_jsonl(spec.trial_dir(results_dir) / results.EVALS_FILE)]


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """trials(workload, nproc_per_node) -> the record of that tiny trial, each run once for the module."""
    results_dir = tmp_path_factory.mktemp("ddp")
    data_dir = str(tmp_path_factory.getbasetemp() / "data")
    records = {}

    def run(workload: str, nproc_per_node: int) -> dict:
        if (workload, nproc_per_node) not in records:
            records[workload, nproc_per_node] = run_trial(tiny_spec(workload, nproc_per_node), results_dir,
                                                          data_dir=data_dir, device="cpu", checkpoint_every_evals=1)
        return records[workload, nproc_per_node]

    run.results_dir, run.data_dir = results_dir, data_dir
    return run


@pytest.mark.parametrize("workload", ["gpt2", "resnet"])
def test_two_ranks_follow_one_process_with_the_same_global_batch(workload, trials):
    one, two = trials(workload, 1), trials(workload, 2)
    assert one.status == two.status == "budget" and one.steps == two.steps == 20
    assert two.batch_size == one.batch_size  # the global batch: each rank trains on half of it
    single, ranks = curve(tiny_spec(workload, 1), trials.results_dir), curve(tiny_spec(workload), trials.results_dir)
    assert [step for step, _ in ranks] == [step for step, _ in single] == [1, 5, 10, 15, 20]
    for (step, expected), (_, loss) in zip(single, ranks):
        assert loss == pytest.approx(expected, rel=TOLERANCE[workload]), f"step {step}"
    assert single[-1][1] < 0.9 * single[0][1]  # it trained: the match is not one of two untrained models

    assert two.world_size == 2 and two.backend == "gloo" and two.spec["nproc_per_node"] == 2
    assert two.provenance["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert one.world_size is None and "world_size" not in one.to_json() and "distributed" not in one.provenance
    hardware, single_hardware = two.provenance["hardware"], one.provenance["hardware"]
    assert hardware["label"] == single_hardware["label"] + " x 2 ranks"  # a board of its own
    assert hardware["fingerprint"] != single_hardware["fingerprint"]
    trial_dir = tiny_spec(workload).trial_dir(trials.results_dir)
    assert sorted(p.name for p in trial_dir.iterdir()) == [results.EVALS_FILE, results.RESULT_FILE, results.TRAIN_FILE]
    assert results.read_result(trial_dir).trial_key == two.trial_key != one.trial_key


def test_a_run_whose_rank_0_is_killed_resumes_from_its_checkpoint(trials, monkeypatch):
    spec = tiny_spec("gpt2", submission=FAULTS)  # AdamW's steps, so it must end as the adamw trial does
    trial_dir = spec.trial_dir(trials.results_dir)
    monkeypatch.setenv("TIMETRIAL_TEST_FAULT", "0:12:kill")
    killed = run_trial(spec, trials.results_dir, data_dir=trials.data_dir, device="cpu", checkpoint_every_evals=1)
    assert killed.status == "failed" and "rank 0 ended without a result" in killed.error, killed.error
    assert results.read_result(trial_dir) is None  # as a killed single process: no record, so it resumes
    assert checkpoint.load(trial_dir)["train_state"]["step"] == 10  # the last eval's

    monkeypatch.delenv("TIMETRIAL_TEST_FAULT")
    resumed = run_trial(spec, trials.results_dir, data_dir=trials.data_dir, device="cpu", checkpoint_every_evals=1)
    uninterrupted = trials("gpt2", 2)
    assert resumed.status == "budget" and resumed.resumed_from_steps == [10]
    assert curve(spec, trials.results_dir) == curve(tiny_spec("gpt2"), trials.results_dir)  # exactly
    assert resumed.final_metrics == uninterrupted.final_metrics
    assert not (trial_dir / checkpoint.CHECKPOINT_FILE).exists()


def test_a_crash_in_one_rank_fails_the_trial_and_names_that_rank(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("TIMETRIAL_TEST_FAULT", "1:3:raise")
    record = run_trial(tiny_spec("gpt2", submission=FAULTS), tmp_path, data_dir=data_dir, device="cpu")
    assert record.status == "failed"
    assert "rank 1: RuntimeError: injected fault on rank 1 at step 3" in record.error
    assert "injected fault" in record.rank_errors["1"]["traceback"]
    assert results.read_result(tiny_spec("gpt2", submission=FAULTS).trial_dir(tmp_path)).error == record.error


def test_single_process_trial_keys_are_unchanged():
    """The committed results and calibration ledgers are keyed by TrialSpec.key(): nproc_per_node=1 adds nothing."""
    # keys computed before TrialSpec had nproc_per_node
    assert TrialSpec(workload="gpt2", submission="nadamw", preset="cpu", seed=2, ruleset="external", study=1, trial=3,
                     hyperparameters={"learning_rate": 0.006, "warmup_factor": 0.05}).key() == "1656c25420"
    assert TrialSpec(workload="resnet", submission="adamw", preset="tiny", stop_at_target=False, max_steps=40,
                     eval_period_steps=10, step_based=True, ruleset="calibrate-tune").key() == "d5c8c8afcc"
    ledger = json.loads((REPO / "configs" / "targets" / "trials" / "cpu" / "gpt2.jsonl").read_text().splitlines()[0])
    calibration = TrialSpec(workload="gpt2", submission=ledger["submission"], preset="cpu", seed=0,
                            hyperparameters=ledger["hyperparameters"], ruleset="calibrate-tune", stop_at_target=False,
                            max_steps=1000, eval_period_steps=50, step_based=True)
    assert calibration.key() == ledger["key"] == "611597d636"
    assert dataclasses.replace(calibration, nproc_per_node=2).key() != ledger["key"]
    files = results.result_files(REPO / "results")
    assert len(files) > 100
    for file in files:
        record = results.read_result(file.parent)
        assert TrialSpec(**record.spec).key() == record.trial_key, file


@pytest.mark.parametrize("overrides, message", [
    (["nproc_per_node=0"], "nproc_per_node=0 is not valid; give a whole number of ranks >= 1"),
    (["nproc_per_node=two"], "nproc_per_node='two' is not valid"),
    (["nproc_per_node=2", "framework=jax", "submission=adamw_jax"], "data-parallel trials are PyTorch-only for now"),
])
def test_a_bad_nproc_per_node_is_a_one_line_error(overrides, message, tmp_path, capsys):
    assert main(["run", "workload=logreg_wine", f"results_dir={tmp_path}", *overrides]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_the_config_key_reaches_the_trial():
    cfg = load_config(["nproc_per_node=2"])
    assert trial_spec(cfg, "gpt2", "adamw", {}).nproc_per_node == 2
    assert trial_spec(load_config([]), "gpt2", "adamw", {}).nproc_per_node == 1
