"""launcher=slurm on a real single-node SLURM cluster (scripts/slurm_localhost.sh): a tuning study as
a job array, a cancelled job reported and completed by a re-run, a requeued job resumed from its
checkpoint. The cluster must come up; if it cannot, these tests fail (they never skip)."""

import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.core import checkpoint, results
from harness.core.runner import TrialSpec, run_trial
from harness.core.submission import load_submission
from harness.study import launchers, status, sweep
from harness.study.tuning import study_grid
from test_distributed import TOLERANCE, curve, tiny_spec
from test_launchers import config, content

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "slurm_localhost.sh"

# A submission that sleeps 10 ms per step (in its schedule), so that a test can catch its job
# between two checkpoints; otherwise AdamW unchanged.
SLOW_ADAMW = """
import time

from submissions.adamw.submission import create_optimizer  # noqa: F401
from submissions.adamw.submission import schedule as adamw_schedule


def schedule(step, step_hint, hyperparameters):
    time.sleep(0.01)
    return adamw_schedule(step, step_hint, hyperparameters)
"""


@pytest.fixture(scope="module")
def cluster():
    """Bring the local cluster up (installing its packages when missing) and point SLURM_CONF at it."""
    done = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"{SCRIPT} up failed (rc {done.returncode}); the slurm tests need the local cluster:\n"
                    f"{done.stdout}\n{done.stderr}")
    env = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    os.environ["SLURM_CONF"] = env.strip().split("=", 1)[1]
    yield


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.5, last_seen=None):
    """`last_seen()`, when given, says in the timeout's message what was observed instead."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    seen = f"; last seen: {last_seen()}" if last_seen else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{seen}")


def slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def slurm_config(results_dir, data_dir, *overrides):
    return config(results_dir, data_dir, "launcher=slurm", "launcher.poll_s=0.5", "checkpoint_every_evals=1",
                  *overrides)


def test_tuning_study_on_slurm_matches_local_run(cluster, tmp_path, data_dir):
    template = TrialSpec(workload="logreg_breast_cancer", submission="adamw", preset="tiny", max_steps=40,
                         eval_period_steps=10, eval_period_s=1e9, budget_multiplier=1e4, stop_at_target=False)
    specs = study_grid(load_submission("adamw"), template, "external", trials=4, studies=1)
    on_slurm = sweep.launch(specs, slurm_config(tmp_path / "slurm", data_dir, "launcher.array_parallelism=2"))
    jobs = [json.loads(launchers.job_record_path(tmp_path / "slurm", s).read_text()) for s in specs]
    array_ids = {job["job_id"].split("_")[0] for job in jobs}
    assert len(array_ids) == 1  # one job array for the study
    local = sweep.launch(specs, config(tmp_path / "local", data_dir))
    assert [r.status for r in on_slurm] == ["budget"] * 4
    assert [content(r) for r in on_slurm] == [content(r) for r in local]
    assert all(r.skipped for r in sweep.launch(specs, slurm_config(tmp_path / "slurm", data_dir)))


def test_cancelled_job_fails_and_rerun_completes_requeued_job_resumes(cluster, tmp_path, data_dir):
    slow = tmp_path / "slow_adamw.py"
    slow.write_text(SLOW_ADAMW)
    defaults = load_submission("adamw").default_hyperparameters()
    base = TrialSpec(workload="logreg_breast_cancer", submission=str(slow), preset="tiny", seed=5,
                     hyperparameters=defaults, max_steps=600, eval_period_steps=50, eval_period_s=1e9,
                     budget_multiplier=1e4, stop_at_target=False)
    cancelled, requeued = (dataclasses.replace(base, ruleset=name) for name in ("cancelled", "requeued"))
    cfg = slurm_config(tmp_path, data_dir, "launcher.wait=false")
    receipts = sweep.launch([cancelled, requeued], cfg)
    job_ids = {spec.tag: receipt.job_id for spec, receipt in zip((cancelled, requeued), receipts)}
    for spec in (cancelled, requeued):  # both running, with a checkpoint
        wait_until(lambda: checkpoint.load(spec.trial_dir(tmp_path)), 120, f"{spec.tag}'s first checkpoint")

    slurm("scancel", job_ids["cancelled"])
    slurm("scontrol", "requeue", job_ids["requeued"])
    slurm("scontrol", "update", f"JobId={job_ids['requeued']}", "StartTime=now")  # skip the requeue delay

    def cancelled_row():
        return status.trial_states(tmp_path).set_index("tag").loc["cancelled"].to_dict()
    # 180 s like the requeued job's wait: CI, running the suite 2.4x slower than an idle machine, once saw no
    # "failed" within 60 s; should it time out again, the message says what status reported instead.
    row = wait_until(lambda: (r := cancelled_row())["state"] == "failed" and r, 180,
                     "the cancelled job to be reported failed", last_seen=cancelled_row)
    assert "CANCELLED" in row["detail"] and "checkpoint at step" in row["detail"]

    # The re-run resubmits the cancelled trial only: the requeued one still has a live job.
    rerun = sweep.launch([cancelled, requeued], slurm_config(tmp_path, data_dir))
    assert rerun[1].status == "queued" and rerun[1].skipped
    assert rerun[0].status == "reached" and rerun[0].steps == 600
    assert rerun[0].resumed_from_steps[0] >= 51

    requeued_result = wait_until(lambda: results.read_result(requeued.trial_dir(tmp_path)), 180,
                                 "the requeued job's result")
    assert requeued_result.status == "reached" and requeued_result.steps == 600
    assert requeued_result.resumed_from_steps and requeued_result.resumed_from_steps[0] >= 51
    # Both resumed from a checkpoint, at different steps, yet trained the same trajectory.
    assert rerun[0].final_metrics == requeued_result.final_metrics
    assert set(status.trial_states(tmp_path)["state"]) == {"done"}
    assert all(r.skipped for r in sweep.launch([cancelled, requeued], slurm_config(tmp_path, data_dir)))


def test_a_data_parallel_trial_is_one_job_with_a_task_per_rank(cluster, tmp_path, data_dir):
    spec = tiny_spec("gpt2")  # nproc_per_node=2: one job, two tasks, the process group from submitit's environment
    on_slurm = sweep.launch([spec], slurm_config(tmp_path / "slurm", data_dir))[0]
    assert on_slurm.status == "budget" and on_slurm.world_size == 2 and on_slurm.backend == "gloo"
    assert len(results.result_files(tmp_path / "slurm")) == 1
    single = tiny_spec("gpt2", nproc_per_node=1)
    run_trial(single, tmp_path / "single", data_dir=data_dir, device="cpu")
    for (step, expected), (_, loss) in zip(curve(single, tmp_path / "single"), curve(spec, tmp_path / "slurm"),
                                           strict=True):
        assert loss == pytest.approx(expected, rel=TOLERANCE["gpt2"]), f"step {step}"
