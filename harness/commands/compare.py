"""Where a new submission stands: its trials on one board with the published submissions and the tuned
baselines (the reference rows), for `timetrial submit`.

The reference rows are the baselines at their tuned points from target setting
(configs/targets/<preset>.yaml `tuned:`; a baseline without one runs its defaults), one study each,
tagged `tuned/study1`. With `submit.baselines=rerun` they are re-timed on this machine first;
otherwise the published tree's are used. Trials of one hardware fingerprint (and speed calibration) are
ranked on seconds; trials of several on time in reference steps (harness/core/machine.py), and the board says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from harness.commands.report import display_table, markdown_table
from harness.core import targets
from harness.core.results import RESULT_FILE, load_results
from harness.core.runner import TIMING_VERSION, TrialSpec
from harness.study import leaderboard
from harness.study.leaderboard import Board, Options

BASELINES = ("nadamw", "adamw", "sgd_momentum")
#: the tuned baselines' reference rows: external-tuning style, one study
REFERENCE_PLACEMENT = {"ruleset": "tuned", "study": 1}


@dataclasses.dataclass(frozen=True)
class Comparison:
    board: Board | None
    submission: str
    compared_with: str  # one line for a person: what the row was ranked against, and how


def reference_specs(template: TrialSpec, workloads: list[str], submissions=BASELINES) -> list[TrialSpec]:
    """The tuned baselines on `workloads`, one seed each (the template's seed + 1, as study 1), at their
    tuned points (the template's hyperparameters on top; defaults where no point is committed yet)."""
    return [dataclasses.replace(template, workload=workload, submission=name, **REFERENCE_PLACEMENT, seed=template.seed + 1,
                                hyperparameters={**(targets.tuned_point(workload, template.preset, name) or {}),
                                                 **template.hyperparameters})
            for name in submissions for workload in workloads]


def has_reference_rows(results_dir: Path, preset: str) -> bool:
    """Whether `results_dir` holds tuned-baseline trials of `preset` (a `make run` on this machine)."""
    prefix = TrialSpec("", "", **REFERENCE_PLACEMENT).tag
    return any(results_dir.glob(f"trials/*/*/{preset}/{prefix}-seed*/{RESULT_FILE}"))


def read_trials(root: Path) -> pd.DataFrame:
    frame = load_results(root)
    return leaderboard.with_study_columns(frame) if not frame.empty else frame


def compare(label: str, ruleset: str, preset: str, workloads: list[str], results_dir: Path, published_dir: Path,
            baselines_rerun: bool, options: Options) -> Comparison:
    mine = read_trials(results_dir)
    published = read_trials(published_dir) if published_dir.exists() else pd.DataFrame()

    def pick(frame: pd.DataFrame, rows) -> pd.DataFrame:
        """The rows wanted, judged against their own ruleset's conditions (budget, step cap) before a
        reference row joins the submission's ruleset."""
        if frame.empty:
            return frame
        frame = frame[rows(frame) & frame["workload"].isin(workloads) & (frame["preset"] == preset)]
        return frame.assign(conditions=leaderboard.conditions(frame)) if not frame.empty else frame

    own = pick(mine, lambda f: (f["submission"] == label) & (f["ruleset"] == ruleset))
    reference_source = mine if baselines_rerun else published
    reference = pick(reference_source, lambda f: f["ruleset"] == REFERENCE_PLACEMENT["ruleset"]).assign(ruleset=ruleset)
    others = pick(published, lambda f: (f["ruleset"] == ruleset) & (f["submission"] != label))
    frame = pd.concat([part for part in (own, reference, others) if not part.empty], ignore_index=True)
    if own.empty:
        return Comparison(None, label, f"{label} has no {ruleset} trials on {workloads} at preset {preset}")
    machines = leaderboard.machine_labels(frame)
    normalized = len(machines) > 1
    if normalized:
        steps = frame.get("reference_step_time_s", pd.Series(index=frame.index, dtype=float))
        dropped = frame[steps.isna()]
        frame = frame[steps.notna()]
    boards = leaderboard.build_from_frame(frame, preset, ruleset, dataclasses.replace(options, normalized=normalized))
    board = next((b for b in boards if label in b.table.index and not b.conditions), None)
    if board is None:
        board = next((b for b in boards if label in b.table.index), None)
    parts = [f"{len(set(others['submission'])) if not others.empty else 0} published {ruleset} submissions "
             f"({published_dir})",
             f"{len(set(reference['submission'])) if not reference.empty else 0} tuned baselines "
             + ("re-timed on this machine" if baselines_rerun else f"from {published_dir}")]
    how = (f"ranked on time in reference steps across {len(machines)} machines: {'; '.join(machines)}" if normalized
           else f"ranked on seconds, all on {machines[0]}")
    if normalized and not dropped.empty:
        how += (f"; left out {len(dropped)} trials recorded without a reference step time "
                f"(of {', '.join(sorted(set(dropped['submission'])))}): rerun with submit.baselines=rerun")
    old = int((frame.get("timing_version", pd.Series(1, index=frame.index)).fillna(1) != TIMING_VERSION).sum())
    if old:
        how += f"; {old} published trials were timed under an earlier timing version (fixed budgets)"
    return Comparison(board, label, f"compared with {' and '.join(parts)}; {how}")


def ranked_rows(comparison: Comparison) -> str:
    """The board as Markdown with a rank column and the new row marked."""
    if comparison.board is None:
        return comparison.compared_with
    table = display_table(comparison.board).reset_index()
    table.insert(0, "rank", range(1, len(table) + 1))
    table["submission"] = [f"**>> {name} <<**" if name == comparison.submission else name
                           for name in table["submission"]]
    return "\n".join([f"### {comparison.board.title}", "", markdown_table(table), "", comparison.compared_with])
