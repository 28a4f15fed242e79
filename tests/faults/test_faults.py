"""Faults, measured: a trial killed with SIGKILL resumes; concurrent writers never collide or leave
half files; a corrupt result.json is skipped with a warning and its trial reruns; a submission that
allocates without bound fails alone. Figures: docs/scale_out.md "Faults"."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.core import results
from harness.core.runner import TrialSpec, run_trial
from harness.study import leaderboard

REPO = Path(__file__).resolve().parents[2]

# One trial with a time-based eval period only (10 evals) and a checkpoint at every eval. Its clock
# advances 1 ms per reading, so what the clock counts is exact and a loaded machine moves nothing (the
# wall-clock figures in docs/scale_out.md come from the same test with a real clock).
TRIAL_SCRIPT = textwrap.dedent("""
    import itertools, sys, time
    import torch
    torch.set_num_threads(1)
    from harness.core.runner import TrialSpec, run_trial
    ticks = itertools.count()
    clock = lambda: next(ticks) * 1e-3
    spec = TrialSpec("logreg_digits", "adamw", preset="tiny", max_steps=2000, stop_at_target=False,
                     eval_period_s=0.2, eval_period_steps=10**9, budget_multiplier=1e3)
    record = run_trial(spec, sys.argv[1], data_dir=sys.argv[2], device="cpu", clock_fn=clock,
                       checkpoint_every_evals=1)
    print(record.status, record.steps, record.submission_time_s, record.resumed_from_steps)
""")


def start_script(results_dir, data_dir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRIAL_SCRIPT, str(results_dir), str(data_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def finish_script(process: subprocess.Popen):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    status, steps, seconds, resumed = out.split(maxsplit=3)
    return status, int(steps), float(seconds), json.loads(resumed)


@pytest.mark.slow
def test_a_trial_killed_with_sigkill_resumes_within_one_eval_period(tmp_path, data_dir):
    whole_process = start_script(tmp_path / "whole", data_dir)  # beside the killed one: the clock is fake
    process = start_script(tmp_path / "killed", data_dir)
    trial_dirs = lambda: list((tmp_path / "killed").rglob("checkpoint.pt"))  # noqa: E731
    deadline = time.time() + 300
    while time.time() < deadline and not (trial_dirs() and len(results.read_jsonl(
            trial_dirs()[0].parent / results.EVALS_FILE)) >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert trial_dirs(), "the trial was killed before its first checkpoint"
    assert not list((tmp_path / "killed").rglob(results.RESULT_FILE))
    resumed, whole = finish_script(start_script(tmp_path / "killed", data_dir)), finish_script(whole_process)
    assert resumed[0] == whole[0] and resumed[1] == whole[1] == 2000 and resumed[3]
    # within one eval period (0.2 s): the steps lost after the checkpoint are redone but counted once
    assert abs(resumed[2] - whole[2]) <= 0.2, (resumed, whole)


#: One fresh interpreter forks the writers: forking them from the test process could copy JAX's threads
#: (an earlier test may have imported it), and an interpreter per writer cost ~0.7 s of CPU each.
WRITERS_SCRIPT = textwrap.dedent("""
    import multiprocessing, sys
    from pathlib import Path
    from harness.core.results import atomic_write_json
    root, writers, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

    def write_rounds(index, start):
        start.wait(timeout=60)  # every writer begins at once, so the writes of the shared file overlap
        for round in range(rounds):
            payload = {"writer": index, "round": round, "padding": "x" * 20000}
            atomic_write_json(root / "trials" / f"t{index}" / "result.json", payload)
            atomic_write_json(root / "shared" / "result.json", payload)   # everyone also writes one file

    fork = multiprocessing.get_context("fork")
    start = fork.Barrier(writers)
    processes = [fork.Process(target=write_rounds, args=(i, start)) for i in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
    sys.exit(0 if all(process.exitcode == 0 for process in processes) else 1)
""")

#: enough to collide on one file many times over on 2 cores
WRITERS, ROUNDS = 32, 50


@pytest.mark.slow
def test_concurrent_writers_leave_whole_files_only(tmp_path):
    writers = subprocess.Popen([sys.executable, "-c", WRITERS_SCRIPT, str(tmp_path), str(WRITERS), str(ROUNDS)],
                               cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    shared, reads = tmp_path / "shared" / "result.json", 0
    try:
        while writers.poll() is None:  # a reader meanwhile: never a half-written file
            if shared.exists():
                assert len(json.loads(shared.read_text())["padding"]) == 20000
                reads += 1
    finally:  # a failed read must not leave the writers behind
        if writers.poll() is None:
            writers.kill()
    assert writers.wait(timeout=600) == 0
    assert reads > 0
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == WRITERS + 1  # one per writer + the shared one: no collisions, no stray names
    for file in files:
        record = json.loads(file.read_text())  # every file whole: parses, full padding
        assert len(record["padding"]) == 20000 and record["round"] == ROUNDS - 1
    assert not list(tmp_path.rglob("*.tmp"))  # no temp files left behind


def test_a_corrupt_result_is_skipped_with_a_warning_and_its_trial_reruns(tmp_path, data_dir):
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3)
    run_trial(spec, tmp_path, data_dir=data_dir)
    file = spec.trial_dir(tmp_path) / results.RESULT_FILE
    file.write_text(file.read_text()[:100])  # truncated mid-write by something other than timetrial
    with pytest.warns(UserWarning, match=f"{file}: unreadable result"):
        assert leaderboard.build(tmp_path, "tiny") == []
    with pytest.warns(UserWarning, match="unreadable result"):
        record = run_trial(spec, tmp_path, data_dir=data_dir)
    assert not record.skipped and results.read_result(file.parent) == record


HOG = """
import torch

def create_optimizer(params, hyperparameters, workload):
    return torch.optim.SGD(params.parameters(), lr=0.1)

def schedule(step, step_hint, hyperparameters):
    hoard = []
    while True:
        hoard.append(torch.ones(256 * 2**20 // 4))  # 256 MB at a time, never freed
"""

SWEEP = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))  # this process may map 6 GB at most
    from harness.study import sweep
    from harness.core.runner import TrialSpec
    # the hog's budget is ample, so the memory cap ends it, not the watchdog that cuts a step past its budget
    specs = [TrialSpec("logreg_wine", sys.argv[3], preset="tiny", max_steps=3, budget_multiplier=1000.0),
             TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3)]
    for record in sweep.run_local(specs, sys.argv[1], progress=False, data_dir=sys.argv[2], device="cpu"):
        print(record.status, "|", record.error or "")
""")


@pytest.mark.slow
def test_a_submission_that_allocates_without_bound_fails_alone(tmp_path, data_dir):
    hog = tmp_path / "hog.py"
    hog.write_text(HOG)
    out = subprocess.run([sys.executable, "-c", SWEEP, str(tmp_path / "runs"), str(data_dir), str(hog)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    hog_line, adamw_line = out.stdout.strip().splitlines()
    assert hog_line.startswith("failed |") and ("MemoryError" in hog_line or "allocate" in hog_line), hog_line
    assert adamw_line.split(" |")[0] in ("budget", "reached")  # the sweep went on
