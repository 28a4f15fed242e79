"""The published leaderboard: every submission under submissions/ (discovered, not listed here),
self-tuning ruleset (defaults, 1.5 x budget, one run per study), on the `cpu` suite of this
machine; then leaderboard.md / leaderboard.csv / report.html and publish.json (hardware, duration).

    python scripts/publish_leaderboard.py                       # every submission, every cpu workload with data
    python scripts/publish_leaderboard.py --family logreg       # one workload family
    python scripts/publish_leaderboard.py --family resnet,vit,gpt,dlrm --studies 1   # several
    python scripts/publish_leaderboard.py --submissions adamw,nadamw --studies 3

Finished trials are skipped, so an interrupted run resumes where it stopped. A board keeps the budgets it
was made under: its machines' reference step times live in `<results-dir>/machines/`, committed with it,
and where that folder lacks one it is taken from what the board's finished trials recorded, so a resumed
board's new rows run under its old rows' budgets on the same machine (another machine measures its own).
A tree with several machines' trials also gets the board that merges them in reference steps, listed first.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import os
import time
from pathlib import Path

from harness.commands import report
from harness.core import machine, registry
from harness.core.results import atomic_write_json, read_result, result_files
from harness.core.runner import TrialSpec
from harness.core.submission import available_submissions, load_submission
from harness.study import leaderboard, sweep
from harness.study.tuning import study_grid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", default="all", help="all, or a comma-separated list of names")
    parser.add_argument("--family", default=None,
                        help="only workloads of these families, comma-separated (e.g. logreg or resnet,vit)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reference", default="nadamw", help="geometric-mean speedup against this submission")
    return parser.parse_args(argv)


def keep_board_budgets(results_dir: Path) -> None:
    """Point this process and its trials at the board's own machine folder, seeded from its trials' records."""
    os.environ["TIMETRIAL_MACHINE_DIR"] = str(results_dir / "machines")
    recorded = collections.defaultdict(list)
    for file in result_files(results_dir):
        record = read_result(file.parent)
        if record is not None and record.reference_step_time and record.provenance:
            recorded[record.provenance["hardware"]["fingerprint"]].append(record.reference_step_time)
    for fingerprint, step_times in sorted(recorded.items()):
        for adopted in machine.adopt_recorded(fingerprint, step_times):
            print(f"{adopted.workload} ({adopted.preset}) on {fingerprint}: the board's recorded reference step time "
                  f"{adopted.step_time_s:.4g} s (measured {adopted.measured_at})")


def board_views(results_dir: Path, preset: str, options: leaderboard.Options) -> list[leaderboard.Board]:
    """One board per machine (and speed calibration) in seconds; where the tree holds several machines' trials
    (a board resumed on another machine, or on one calibrated again), first the board that merges them in
    reference steps, where their trials add up."""
    boards = leaderboard.build(results_dir, preset, "self", options)
    if len({(board.fingerprint, board.speed_calibration) for board in boards}) > 1:
        boards = leaderboard.build(results_dir, preset, "self", dataclasses.replace(options, normalized=True)) + boards
    return boards


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = available_submissions() if args.submissions == "all" else args.submissions.split(",")
    submissions = [load_submission(name) for name in names]  # unknown names fail here, listing the valid ones
    families = sorted({cls.family for cls in registry.workload_classes().values()})
    chosen = families if args.family is None else args.family.split(",")
    unknown = sorted(set(chosen) - set(families))
    if unknown:
        raise SystemExit(f"--family: no workload family {unknown}; families: {families}")
    workloads = [w for w in sweep.suite("all", args.preset, args.data_dir) if registry.workload_class(w).family in chosen]
    if not workloads:
        raise SystemExit(f"no {args.preset} workloads with data for families {chosen}; families: {families}")
    specs = [spec for name, submission in zip(names, submissions) for workload in workloads
             for spec in study_grid(submission, TrialSpec(workload, name, preset=args.preset,
                                                          framework=submission.framework), "self",
                                    studies=args.studies)]
    keep_board_budgets(Path(args.results_dir))
    print(f"{len(submissions)} submissions x {len(workloads)} workloads x {args.studies} studies = {len(specs)} trials")
    started = time.time()
    records = sweep.run_local(specs, args.results_dir, data_dir=args.data_dir, device=args.device)
    duration = time.time() - started
    # trials finished by an earlier (or a parallel) invocation are skipped here but keep their own time
    trial_time = sum(record.wall_time_s or 0.0 for record in records)
    options = leaderboard.Options(reference=args.reference)
    boards = board_views(Path(args.results_dir), args.preset, options)
    paths = report.write(boards, args.results_dir, options)
    # the machine the trials ran on, as they recorded it: the preset sets their torch threads, so this
    # process (torch's default threads) has another fingerprint than its own trials
    machines = {record.provenance["hardware"]["fingerprint"]: record.provenance["hardware"]
                for record in records if record.provenance}
    publish_file = Path(args.results_dir) / "publish.json"
    runs = json.loads(publish_file.read_text()) if publish_file.exists() else {}
    # one entry per (hardware, workload families): the logreg suite and the deep suite are run apart
    runs[f"{'+'.join(sorted(machines))} {'+'.join(chosen)}"] = {
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # duration: this invocation's; the trials it ran (others were finished already, by it or a parallel one)
        "duration_s": duration, "trials_run": sum(not record.skipped for record in records), "trial_time_s": trial_time,
        "hardware": list(machines.values()), "preset": args.preset,
        "ruleset": "self", "studies": args.studies, "submissions": names, "workloads": workloads,
        "trials": len(specs)}
    atomic_write_json(publish_file, runs)
    print(report.render_markdown(boards, options))
    print(f"\n{len(specs)} trials ({trial_time / 60:.1f} min of trial time) in {duration / 60:.1f} min; "
          f"wrote {', '.join(map(str, paths))}, publish.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
