"""What a results tree holds: trials queued, running, done and failed (and why), from the
`result.json` files, the checkpoints and the launcher's job records with the scheduler's job states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.core import checkpoint, results
from harness.study import launchers

COLUMNS = ["state", "workload", "submission", "tag", "seed", "job_id", "detail", "trial_dir"]


def trial_states(results_dir: Path | str) -> pd.DataFrame:
    """One row per trial: state (queued | running | done | interrupted | failed) and a detail saying why."""
    results_dir = Path(results_dir)
    jobs = {record["trial_dir"]: record for record in launchers.read_job_records(results_dir)}
    trial_dirs = {str(p.parent) for p in results.result_files(results_dir)} | set(jobs)
    trial_dirs |= {str(p.parent) for p in results_dir.rglob(checkpoint.CHECKPOINT_FILE)}
    rows = [trial_row(Path(d), jobs.get(d)) for d in sorted(trial_dirs)]
    return pd.DataFrame(rows, columns=COLUMNS)


def trial_row(trial_dir: Path, job: dict[str, Any] | None) -> dict[str, Any]:
    record = results.read_result(trial_dir)
    identity = ("workload", "submission", "tag", "seed")
    row = ({key: getattr(record, key) for key in identity} if record is not None
           else {key: (job or {}).get(key) for key in identity})
    row.update(trial_dir=str(trial_dir), job_id=job["job_id"] if job else None)
    ask = job is not None and (record is None or record.status == "failed")  # sacct only when it matters
    state = launchers.job_state(job) if ask else None
    if record is not None and not (record.status == "failed" and job and launchers.job_active(job, state)):
        failed = record.status not in results.FINISHED
        detail = str(record.status)
        if record.time_to_target_s is not None:
            detail += f" in {record.time_to_target_s:.2f} s ({record.steps_to_target} steps)"
        if record.contended:
            detail += f" [CONTENDED clock: cpu share {record.cpu_share}, other work on {record.other_cores} cores]"
        if record.error:
            detail += f": {record.error}"
        if record.traceback:
            detail += f"\n{record.traceback.strip().splitlines()[-1]}"
        return {**row, "state": "failed" if failed else "done", "detail": detail}
    progress = checkpoint_progress(trial_dir)
    if job is None:
        return {**row, "state": "interrupted",
                "detail": f"no result and no job: interrupted (or still running in-process); {progress}; "
                          "rerun its command to resume"}
    if state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING") or (
            state == "UNKNOWN" and launchers.job_active(job, state)):
        return {**row, "state": "queued", "detail": f"job {state.lower()}; {progress}"}
    if launchers.job_active(job, state):
        return {**row, "state": "running", "detail": f"job {state.lower()}; {progress}"}
    tail = launchers.log_tail(job["stderr"], lines=3)
    return {**row, "state": "failed",
            "detail": f"job {job['job_id']} {state} without a result; {progress}; log {job['stderr']}"
                      + (f"\n{tail}" if tail else "")}


def checkpoint_progress(trial_dir: Path) -> str:
    saved = checkpoint.load(trial_dir)
    if saved is None:
        return "no checkpoint"
    state = saved["train_state"]
    return f"checkpoint at step {state['step']} ({state['submission_time_s']:.1f} s on the clock)"


def render(table: pd.DataFrame) -> str:
    if table.empty:
        return "no trials"
    counts = table["state"].value_counts()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("queued", "running", "done", "failed", "interrupted"))
    lines = [summary, ""]
    for row in table.itertuples():
        lines.append(f"{row.state:11s} {row.workload}/{row.submission} {row.tag} seed {row.seed}"
                     + (f" [job {row.job_id}]" if row.job_id else ""))
        lines += [f"            {line}" for line in str(row.detail).splitlines()]
    return "\n".join(lines)
