"""Where the trials of a sweep run: `launcher=debug | local | slurm` (configs/launcher/*.yaml).

debug  in this process, one after another (`harness.study.sweep.run_local`): breakpoints work.
local  local processes through submitit's LocalExecutor, at most `max_workers` (default: cores) at once.
slurm  SLURM jobs through submitit: one trial = one job, the grid = one job array with an
       array-parallelism cap.

Each submitted trial gets a job record, `<results_dir>/launcher/jobs/<trial key>.json`, so that a
re-run knows which trials are still queued or running (and does not submit them twice) and
`timetrial status` can ask the scheduler why a job ended. Jobs are `submitit.helpers.Checkpointable`:
a preempted or timed-out job is requeued by submitit and its trial resumes from the checkpoint the
runner writes at eval points (`checkpoint_every_evals`).

A data-parallel trial (`nproc_per_node=N`) is one SLURM job of N tasks, each task one rank (the
process group from submitit's environment); `local` jobs start their N ranks themselves (run_trial).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import submitit
from tqdm.auto import tqdm

from harness.core import results
from harness.core.runner import TrialSpec, run_trial, spec_record

JOBS_DIR = Path("launcher") / "jobs"
SUBMITIT_DIR = Path("launcher") / "submitit"
# SLURM job states in which the job may still run its trial; a trial in one of them is not resubmitted.
ACTIVE_SLURM_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
    "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "PREEMPTED",
})
# sacct may not know a job in its first seconds; within this age UNKNOWN counts as queued.
UNKNOWN_GRACE_S = 120.0


class TrialJob(submitit.helpers.Checkpointable):
    """One trial as a submitit job. `checkpoint()` (inherited) resubmits the same call on timeout or
    preemption; `run_trial` then resumes from the trial's own checkpoint."""

    def __init__(self, results_dir: str, options: Mapping[str, Any]) -> None:
        self.results_dir = results_dir
        self.options = dict(options)

    def __call__(self, spec: TrialSpec) -> results.TrialRecord:
        if submitit.JobEnvironment().num_tasks > 1:  # this task is one rank of a data-parallel trial
            # torchrun's variables from SLURM's; each rank picks its GPU itself (cuda:LOCAL_RANK)
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_trial(spec, self.results_dir, **self.options)


def submitit_folder(launcher: Mapping[str, Any], results_dir: Path) -> Path:
    return Path(launcher["folder"]) if launcher.get("folder") else Path(results_dir) / SUBMITIT_DIR


def make_executor(launcher: Mapping[str, Any], results_dir: Path) -> submitit.Executor:
    """A submitit executor configured from the `launcher` config group."""
    folder = submitit_folder(launcher, results_dir)  # files are named by job id: no folder per job
    if launcher["name"] == "local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=launcher["max_num_timeout"])
        executor.update_parameters(timeout_min=launcher["timeout_min"])
        return executor
    if launcher["name"] != "slurm":
        raise ValueError(f"launcher={launcher['name']!r} has no submitit executor; valid: local, slurm")
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=launcher["max_num_timeout"])
    parameters = {"time": launcher["timeout_min"], "cpus_per_task": launcher["cpus_per_task"],
                  "array_parallelism": launcher["array_parallelism"], "job_name": "timetrial",
                  "additional_parameters": dict(launcher["additional_parameters"] or {})}
    if launcher["partition"]:
        parameters["partition"] = launcher["partition"]
    if launcher["gpus_per_node"]:
        parameters["gpus_per_node"] = launcher["gpus_per_node"]
    if launcher["mem_gb"]:
        parameters["mem"] = f"{launcher['mem_gb']}GB"
    executor.update_parameters(**parameters)
    return executor


# ---- job records ---------------------------------------------------------------------------------

def job_record_path(results_dir: Path, spec: TrialSpec) -> Path:
    return Path(results_dir) / JOBS_DIR / f"{spec.key()}.json"


def write_job_record(results_dir: Path, spec: TrialSpec, launcher: str, job: submitit.Job) -> None:
    results.atomic_write_json(job_record_path(results_dir, spec), {
        "launcher": launcher, "job_id": job.job_id, "folder": str(job.paths.folder),
        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
        "trial_dir": str(spec.trial_dir(Path(results_dir))), "trial_key": spec.key(),
        "workload": spec.workload, "submission": spec.submission_label(), "tag": spec.tag, "seed": spec.seed,
        "submitted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    })


def read_job_records(results_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((Path(results_dir) / JOBS_DIR).glob("*.json"))]


def job_state(record: Mapping[str, Any]) -> str:
    """The scheduler's word for a recorded job: SLURM's state (via sacct, through submitit), or for a
    local job RUNNING while its process lives and EXITED after."""
    if record["launcher"] == "slurm":
        return submitit.SlurmJob(folder=record["folder"], job_id=record["job_id"]).state.split()[0]
    try:
        os.kill(int(record["job_id"]), 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return "EXITED"
    return "RUNNING"


def job_active(record: Mapping[str, Any], state: str | None = None) -> bool:
    """Whether the job (in `state`, else asked for) may still run, so its trial must not be submitted again."""
    state = state or job_state(record)
    if state == "UNKNOWN":
        submitted = datetime.datetime.fromisoformat(record["submitted_at"])
        age = (datetime.datetime.now(datetime.timezone.utc) - submitted).total_seconds()
        return age < UNKNOWN_GRACE_S
    return state in ACTIVE_SLURM_STATES


def log_tail(path: str | Path, lines: int = 5) -> str:
    path = Path(path)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


# ---- running a grid ------------------------------------------------------------------------------

def submit_jobs(specs: Sequence[TrialSpec], launcher: Mapping[str, Any], results_dir: Path,
                options: Mapping[str, Any]) -> list[tuple[TrialSpec, submitit.Job]]:
    """Submit every spec; slurm: one job array, one task per rank. Returns (spec, job) pairs, each with a
    job record."""
    executor = make_executor(launcher, results_dir)
    if launcher["name"] == "slurm":
        executor.update_parameters(ntasks_per_node=ranks_per_trial(specs))
    jobs = executor.map_array(TrialJob(str(results_dir), options), list(specs))
    for spec, job in zip(specs, jobs):
        write_job_record(results_dir, spec, launcher["name"], job)
    return list(zip(specs, jobs))


def run_local_processes(specs: Sequence[TrialSpec], launcher: Mapping[str, Any], results_dir: Path,
                        options: Mapping[str, Any], bar) -> list[tuple[TrialSpec, submitit.Job]]:
    """LocalExecutor starts every job at once; keep at most `max_workers` running by feeding it (default:
    as many as the cores hold, each trial's ranks one core each)."""
    max_workers = launcher["max_workers"] or max(1, (os.cpu_count() or 1) // ranks_per_trial(specs))
    waiting, running, finished = list(specs), [], []
    while waiting or running:
        while waiting and len(running) < max_workers:
            running += submit_jobs([waiting.pop(0)], launcher, results_dir, options)
        time.sleep(launcher["poll_s"])
        for pair in [pair for pair in running if pair[1].done()]:
            running.remove(pair)
            finished.append(pair)
            count_outcome(bar, pair[0], results_dir)
    return finished


def ranks_per_trial(specs: Sequence[TrialSpec]) -> int:
    """The one `nproc_per_node` of a sweep's trials (a job array has one task count); 1 for no trials."""
    counts = {spec.nproc_per_node for spec in specs} or {1}
    if len(counts) != 1:
        raise ValueError(f"the trials of one sweep must share nproc_per_node; these have {sorted(counts)}")
    return counts.pop()


def count_outcome(bar, spec: TrialSpec, results_dir: Path) -> None:
    """One more finished trial on the bar, its status counted in the postfix (diverged and failed show)."""
    record = results.read_result(spec.trial_dir(results_dir))
    status = results.TrialStatus.FAILED if record is None else record.status
    counts = getattr(bar, "status_counts", {})
    counts[status] = counts.get(status, 0) + 1
    bar.status_counts = counts
    bar.set_postfix(counts)
    bar.update()


def wait_for_jobs(pairs: Sequence[tuple[TrialSpec, submitit.Job]], poll_s: float, bar, results_dir: Path) -> None:
    pending = list(pairs)
    while pending:
        time.sleep(poll_s)
        pending[0][1].watcher.update()  # one sacct call for every job of the array
        done = [pair for pair in pending if pair[1].done()]
        for pair in done:
            pending.remove(pair)
            count_outcome(bar, pair[0], results_dir)


def outcome(spec: TrialSpec, job: submitit.Job, results_dir: Path) -> results.TrialRecord:
    """The trial's result record; for a job that ended without one, a failed record saying why."""
    record = results.read_result(spec.trial_dir(results_dir))
    if record is not None:
        return record
    return spec_record(spec, results.TrialStatus.FAILED, job_id=job.job_id,
                       error=f"job {job.job_id} ended {job.state} without a result; log: {job.paths.stderr}\n"
                             f"{log_tail(job.paths.stderr)}")


def launch_jobs(specs: Sequence[TrialSpec], launcher: Mapping[str, Any], results_dir: Path,
                options: Mapping[str, Any], progress: bool) -> list[results.TrialRecord]:
    """Run `specs` (none finished, none queued) as local processes or SLURM jobs; with
    `launcher.wait` (local: always) return their records, else the submission receipts, in the
    order of `specs`."""
    bar = tqdm(total=len(specs), unit="trial", desc=f"{launcher['name']} jobs", disable=not progress)
    with bar:
        if launcher["name"] == "local":
            pairs = run_local_processes(specs, launcher, results_dir, options, bar)
        else:
            pairs = submit_jobs(specs, launcher, results_dir, options)
            if not launcher["wait"]:
                return [spec_record(s, results.TrialStatus.SUBMITTED, job_id=j.job_id) for s, j in pairs]
            wait_for_jobs(pairs, launcher["poll_s"], bar, results_dir)
    jobs = {spec.key(): job for spec, job in pairs}  # local jobs finish in any order
    return [outcome(spec, jobs[spec.key()], results_dir) for spec in specs]
