"""`timetrial` command line: `timetrial <command> [positional] [key=value ...] [hp.NAME=VALUE ...]`.

Options are hydra overrides of configs/timetrial.yaml; `timetrial <command> --help` lists them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from harness.commands import compare, report
from harness.commands.describe import describe
from harness.core import machine, provenance
from harness.core.presets import apply_threads
from harness.core.registry import UnknownWorkloadError, make_workload, workload_class, workload_classes
from harness.core.results import TrialRecord
from harness.core.runner import TrialInterrupted, reference_step_time, resolve_device, run_trial
from harness.core.search_space import SearchSpaceError
from harness.core.submission import SubmissionError, available_submissions, check_submission, load_submission
from harness.study import leaderboard, reproduce, status, sweep
from harness.study.calibrate import CalibrationIncomplete, calibrate
from harness.study.config import (UsageError, leaderboard_options, load_config, split_arguments, trial_options,
                                  trial_spec, tune_specs)


def cmd_run(positionals, cfg, hyperparameters) -> int:
    """Train one submission on one workload and write its trial directory under results_dir.

    timetrial run workload=logreg_digits submission=adamw [hp.learning_rate=0.003]
    """
    if cfg.launcher.name != "debug":
        raise UsageError(f"timetrial run trains one trial in this process, so launcher={cfg.launcher.name} does "
                         "not apply; use `timetrial tune` or `bench` for launched sweeps")
    workload_class(cfg.workload)  # unknown names fail here, with the valid ones listed
    load_submission(str(cfg.submission))
    spec = trial_spec(cfg, cfg.workload, str(cfg.submission), hyperparameters)
    record = run_trial(spec, cfg.results_dir, **trial_options(cfg))
    print(format_record(record))
    if record.skipped:
        print("(finished earlier; force=true runs it again)")
    return 0 if record.status in ("reached", "budget", "unsupported") else 1


def format_record(record: TrialRecord) -> str:
    lines = [f"{record.workload} / {record.submission} ({record.preset}, seed {record.seed}): {record.status}"]
    if record.time_to_target_s is not None:
        lines.append(f"  time to target  {record.time_to_target_s:.2f} s  ({record.steps_to_target} steps)")
    if record.submission_time_s is not None:
        lines.append(f"  submission time {record.submission_time_s:.2f} s over {record.steps} steps; "
                     f"eval time {record.eval_time_s:.2f} s ({record.evals} evals)")
    if record.best_metric is not None:
        lines.append(f"  best {record.target_metric} {record.best_metric:.4g} (target {record.target_value:.4g})")
    if record.error:
        lines.append(f"  error: {record.error}")
    lines.append(f"  hyperparameters: {record.hyperparameters or {}}")
    return "\n".join(lines)


def cmd_list(positionals, cfg, hyperparameters) -> int:
    """List workloads or submissions.

    timetrial list workloads | timetrial list submissions
    """
    what = positionals[0] if positionals else None
    if what == "workloads":

        for name, cls in sorted(workload_classes().items()):
            variant = f"  (variant of {cls.variant_of})" if cls.variant_of else ""
            print(f"{name:36s} {cls.family:8s} [{', '.join(cls.frameworks)}] {cls.description}{variant}")
        return 0
    if what == "submissions":

        workloads = sorted(workload_classes())
        for name in available_submissions():
            submission = load_submission(name)
            meta = submission.metadata
            paper = meta.get("paper", {})
            arxiv = f"arXiv:{paper['arxiv']}" if paper.get("arxiv") else paper.get("url", "")
            unsupported = [w for w in workloads if submission.unsupported_reason(w)]
            supports = "all workloads" if not unsupported else f"all but {', '.join(unsupported)}"
            print(f"{name:22s} {meta.get('method', '?')}  [{submission.framework}; {supports}]\n"
                  f"{'':22s} {paper.get('title', '?')} {arxiv}")
        return 0
    raise UsageError("timetrial list needs 'workloads' or 'submissions'")


def cmd_check_submission(positionals, cfg, hyperparameters) -> int:
    """Check a submission's files, metadata and search space, then train it for a few steps on
    the `tiny` preset of one workload (workload=...).

    timetrial check-submission submissions/my_optimizer
    """
    if not positionals:
        raise UsageError("timetrial check-submission needs a submission name or path")
    submission, problems, warnings = check_submission(positionals[0])
    for warning in warnings:
        print(f"warning: {warning}")
    if submission is not None and not problems:
        spec = trial_spec(cfg, cfg.workload, positionals[0], hyperparameters, ruleset="check")
        # trained in its own framework (a JAX submission needs no framework=jax here), in one process
        spec = type(spec)(**{**spec.__dict__, "preset": "tiny", "max_steps": 5, "framework": submission.framework,
                             "nproc_per_node": 1})
        with tempfile.TemporaryDirectory() as scratch:
            record = run_trial(spec, scratch, data_dir=cfg.data_dir, device=cfg.device, submission=submission)
        if record.status in ("failed", "diverged"):
            problems.append(f"5 steps on {cfg.workload} (tiny) {record.status}: {record.error}\n"
                            f"{record.traceback or ''}")
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        return 1
    print(f"ok: {submission.name} ({submission.api} API, {submission.framework}) trains on {cfg.workload}")
    return 0


TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "new_submission"


def cmd_new_submission(positionals, cfg, hyperparameters) -> int:
    """Write a working submission folder to start from: submission, search space, metadata and a reference test.

    timetrial new-submission path/to/my_optimizer        # then: timetrial check-submission path/to/my_optimizer
    """
    if len(positionals) != 1:
        raise UsageError("timetrial new-submission needs one folder to create, e.g. submissions/my_optimizer")
    folder = Path(positionals[0])
    if folder.exists():
        raise UsageError(f"{folder} exists already; give a new folder")
    folder.mkdir(parents=True)
    for template in sorted(TEMPLATE_DIR.iterdir()):
        if template.is_file():
            (folder / template.name).write_text(template.read_text().replace("NAME", folder.name))
    print(f"wrote {folder}/: " + ", ".join(sorted(p.name for p in folder.iterdir())) +
          f"\nnext: timetrial check-submission {folder}; python -m pytest {folder}/test_reference.py; "
          "docs/submission_api.md")
    return 0


def local_workers(cfg) -> int:
    """Trials at a time: one per core with launcher=local (each has one thread), one otherwise."""
    return (cfg.launcher.get("max_workers") or os.cpu_count() or 1) if cfg.launcher.name == "local" else 1


def cmd_bench(positionals, cfg, hyperparameters) -> int:
    """The default benchmark: the tuned baselines (bench.submissions at their points from target setting)
    on `suite` (default: one workload per family); prints their board.

    timetrial bench [preset=cpu] [suite=all] [bench.submissions=[adamw,nadamw]] [launcher=local]
    """
    workloads = sweep.suite(cfg.suite, cfg.preset, cfg.data_dir, cfg.suites)
    template = trial_spec(cfg, workloads[0], cfg.bench.submissions[0], hyperparameters, **compare.REFERENCE_PLACEMENT)
    specs = compare.reference_specs(template, workloads, list(cfg.bench.submissions))
    workers = local_workers(cfg)
    estimated = sweep.estimate(specs, cfg)
    print(f"bench: {len(specs)} trials ({', '.join(cfg.bench.submissions)} on {', '.join(workloads)}), preset "
          f"{cfg.preset}; {estimated.describe(workers)}", flush=True)
    sweep.launch(sweep.longest_first(specs, estimated), cfg)
    options = leaderboard_options(cfg)
    print(report.render_markdown(leaderboard.build(cfg.results_dir, cfg.preset, "tuned", options), options))
    return 0


def cmd_leaderboard(positionals, cfg, hyperparameters) -> int:
    """Score the results tree; write leaderboard.md, leaderboard.csv and report.html into it.

    timetrial leaderboard [results_dir=runs] [preset=cpu] [leaderboard.ruleset=self]
    """
    options = leaderboard_options(cfg)
    boards = leaderboard.build(cfg.results_dir, cfg.preset, cfg.leaderboard.ruleset, options)
    if not boards:
        found = leaderboard.what_is_there(cfg.results_dir)
        raise UsageError(f"no results for preset {cfg.preset}" + (f", ruleset {cfg.leaderboard.ruleset}"
                         if cfg.leaderboard.ruleset else "") + f" under {cfg.results_dir}; "
                         + (f"it has: {found}" if found else "it has no trial results at all") + "; nothing written")
    paths = report.write(boards, cfg.results_dir, options)
    print(report.render_markdown(boards, options))
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_tune(positionals, cfg, hyperparameters) -> int:
    """Run a tuning study grid (AlgoPerf external or self-tuning ruleset) and resume where it stopped.

    timetrial tune workload=logreg_wine submission=adamw tuning=external trials=5 studies=3
    timetrial tune workload=logreg_wine submission=adamw tuning=self studies=3
    """
    workload_class(cfg.workload)
    specs = tune_specs(cfg, [cfg.workload], str(cfg.submission), hyperparameters)
    records = sweep.launch(specs, cfg)
    options = leaderboard_options(cfg)
    print(report.render_markdown(leaderboard.build(cfg.results_dir, cfg.preset, cfg.tuning, options), options))
    return 0 if all(r.status != "failed" for r in records) else 1


def cmd_submit(positionals, cfg, hyperparameters) -> int:
    """Submit an optimizer: check it, tune it on the suite, and rank it on the published board with the tuned baselines.

    timetrial submit path/to/my_optimizer [tuning=external] [trials=5 studies=3] [suite=all] [preset=cpu]
        [submit.baselines=published|rerun] [submit.published_dir=results]
    """
    if not positionals:
        raise UsageError("timetrial submit needs a submission folder or name")
    if cmd_check_submission(positionals, cfg, hyperparameters) != 0:
        return 1
    workloads = sweep.suite(cfg.suite, cfg.preset, cfg.data_dir, cfg.suites)
    specs = tune_specs(cfg, workloads, positionals[0], hyperparameters)
    rerun = cfg.submit.baselines == "rerun"
    if rerun:
        template = trial_spec(cfg, workloads[0], compare.BASELINES[0], {}, **compare.REFERENCE_PLACEMENT)
        specs += compare.reference_specs(template, workloads)
    print(f"{cfg.tuning} tuning: {len(specs)} trials on {len(workloads)} workloads, preset {cfg.preset}"
          + (" (the tuned baselines re-timed here included)" if rerun else "")
          + f"; {sweep.estimate(specs, cfg).describe(workers=local_workers(cfg))}")
    sweep.launch(specs, cfg)
    options = leaderboard_options(cfg)
    here = rerun or cfg.submit.baselines == "auto" and compare.has_reference_rows(Path(cfg.results_dir), cfg.preset)
    comparison = compare.compare(specs[0].submission_label(), cfg.tuning, cfg.preset, workloads, Path(cfg.results_dir),
                                 Path(cfg.submit.published_dir), here, options)
    print(compare.ranked_rows(comparison))
    paths = report.write(leaderboard.build(cfg.results_dir, cfg.preset, None, options), cfg.results_dir, options)
    print("\nyour trials' boards: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_calibrate(positionals, cfg, hyperparameters) -> int:
    """Set a workload's target by the step-based protocol (harness/study/calibrate.py, docs/targets.md); resumes.

    timetrial calibrate workload=gpt2 preset=cpu [calibrate.points=20 calibrate.reruns=5]
        [calibrate.baselines=[adamw,nadamw,sgd_momentum]] [calibrate.shard=0/2] [launcher=local]
    Finished trials go to configs/targets/trials/<preset>/<workload>.jsonl (commit it: another machine
    or session continues from it); the target, once every trial is there, to configs/targets/<preset>.yaml.
    """
    workload_class(cfg.workload)  # unknown names fail here, with the valid ones listed
    knobs = cfg.calibrate
    try:
        entry = calibrate(cfg.workload, cfg.preset, lambda specs: sweep.launch(specs, cfg), cfg.results_dir,
                          baselines=list(knobs.baselines), points=knobs.points, reruns=knobs.reruns,
                          search_seed=knobs.search_seed, shard=knobs.shard, note=knobs.note,
                          device=str(resolve_device(cfg.device)), data_dir=cfg.data_dir, batch=knobs.batch)
    except CalibrationIncomplete as err:
        print(err, file=sys.stderr)
        return 3
    except ValueError as err:
        raise UsageError(str(err)) from None
    source = entry["provenance"]
    print(f"{cfg.workload} ({cfg.preset}): target {entry['target_value']:.4g} at step_hint {entry['step_hint']}; "
          f"best {source['best_submission']} {source['best_hyperparameters']}; reruns first met it at steps "
          f"{source['rerun_steps_to_target']}")
    return 0


def cmd_calibrate_speed(positionals, cfg, hyperparameters) -> int:
    """Measure this machine's reference step times again, and so its time budgets (harness/core/machine.py).

    timetrial calibrate-speed [preset=cpu] [speed.workloads=[gpt2,resnet]]
    """
    device = resolve_device(cfg.device)
    apply_threads(cfg.preset)  # the fingerprint names the preset's thread count
    fingerprint = provenance.hardware(device)["fingerprint"]
    print(f"speed calibration {machine.start_speed_calibration(fingerprint)} of {fingerprint} "
          f"({machine.machine_file(fingerprint)}); the workloads not measured here are measured again on first use")
    print(f"{'workload':24s} {'step (s)':>9s} {'step_hint':>9s} {'budget (s)':>10s} {'probe (ms)':>10s}  clock")
    for name in sweep.suite(cfg.speed.workloads, cfg.preset, cfg.data_dir, cfg.suites):
        workload = make_workload(name, cfg.preset, cfg.data_dir, str(device))
        measured = reference_step_time(workload, cfg.data_dir, device, remeasure=True)
        clock = {True: "CONTENDED", False: "own cores", None: "too short to judge"}[measured.contended]
        print(f"{name:24s} {measured.step_time_s:9.4g} {workload.step_hint:9d} "
              f"{measured.budget_s(workload.step_hint):10.1f} {measured.probe_s * 1e3:10.3f}  {clock}")
    return 0


def cmd_describe(positionals, cfg, hyperparameters) -> int:
    """Describe a workload at a preset for a person: model, data, metric, target and how it was set,
    step_hint, this machine's step time and budget, threads, and trivial models' scores.

    timetrial describe workload=gpt2 preset=cpu
    """
    workload_class(cfg.workload)
    print(describe(cfg.workload, cfg.preset, cfg.data_dir, resolve_device(cfg.device)))
    return 0


def cmd_status(positionals, cfg, hyperparameters) -> int:
    """Show which trials under results_dir are queued, running, done or failed, and why.

    timetrial status [results_dir=runs]
    """
    table = status.trial_states(cfg.results_dir)
    print(status.render(table))
    return 0


def cmd_reproduce(positionals, cfg, hyperparameters) -> int:
    """Reproduce a paper's comparison table and check its headline claim (configs/reproduce/).

    timetrial reproduce list
    timetrial reproduce sophia [preset=cpu] [launcher=slurm] [reproduce.studies=1] [max_steps=20]
    timetrial reproduce all preset=cpu --ledger      # also writes results_dir/claims.md
    """
    flags = {p for p in positionals if p.startswith("--")}
    names = [p for p in positionals if not p.startswith("--")]
    if flags - {"--ledger"}:
        raise UsageError(f"unknown flag(s) {sorted(flags - {'--ledger'})}; valid: --ledger")
    if not names:
        raise UsageError(f"timetrial reproduce needs 'list', 'all' or a paper: {reproduce.available_papers()}")
    wanted = reproduce.available_papers() if names in (["list"], ["all"]) else names
    try:
        papers = [reproduce.load_paper(name) for name in wanted]
    except reproduce.ReproduceConfigError as err:
        raise UsageError(str(err)) from None
    if names == ["list"]:
        for paper in papers:
            print(f"{paper.name:22s} {paper.title} (arXiv:{paper.arxiv})\n{'':22s} {paper.table}; "
                  f"{len(paper.claims)} claim(s)")
        return 0
    outcomes = []
    for paper in papers:
        outcomes.append(reproduce.run_paper(paper, cfg, hyperparameters))
        print(reproduce.render_outcome(outcomes[-1]) + "\n")
    if cfg.reproduce.ledger or "--ledger" in flags:
        path = reproduce.update_ledger(cfg.results_dir, outcomes, cfg.reproduce.note)
        print(f"wrote {path}; every outcome so far, for the README:\n\n{reproduce.ledger_summary(cfg.results_dir)}")
    return 0


COMMANDS: dict[str, Callable[..., int]] = {
    "run": cmd_run,
    "list": cmd_list,
    "check-submission": cmd_check_submission,
    "new-submission": cmd_new_submission,
    "bench": cmd_bench,
    "leaderboard": cmd_leaderboard,
    "status": cmd_status,
    "tune": cmd_tune,
    "submit": cmd_submit,
    "calibrate": cmd_calibrate,
    "calibrate-speed": cmd_calibrate_speed,
    "describe": cmd_describe,
    "reproduce": cmd_reproduce,
}


def usage() -> str:
    lines = ["usage: timetrial <command> [args] [key=value ...] [hp.NAME=VALUE ...]", "", "commands:"]
    for name, fn in COMMANDS.items():
        lines.append(f"  {name:18s} {first_paragraph(fn.__doc__)}")
    lines.append("\n`timetrial <command> --help` shows a command's usage and every key=value option.")
    return "\n".join(lines)


def first_paragraph(doc: str) -> str:
    """A docstring's first paragraph on one line (a summary that wraps is never cut mid-sentence)."""
    return " ".join(textwrap.dedent(doc).strip().split("\n\n")[0].split())


def command_help(name: str) -> str:
    doc = textwrap.dedent(COMMANDS[name].__doc__).strip()
    defaults = OmegaConf.to_yaml(load_config([]), resolve=False)
    return (f"{doc}\n\noptions (key=value, defaults shown):\n{textwrap.indent(defaults, '  ')}\n"
            "hyperparameters: hp.NAME=VALUE (e.g. hp.learning_rate=0.003) on top of the submission's defaults")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"timetrial: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if "-h" in args or "--help" in args:
        print(command_help(name))
        return 0
    try:
        positionals, overrides, hyperparameters = split_arguments(args)
        cfg = load_config(overrides)
        check_folders(cfg)
        return COMMANDS[name](positionals, cfg, hyperparameters)
    except (UsageError, UnknownWorkloadError, SubmissionError, SearchSpaceError) as err:
        print(f"timetrial {name}: {err}", file=sys.stderr)
        return 2
    except TrialInterrupted as err:
        print(f"\ntimetrial {name}: {err}", file=sys.stderr)
        return 130


def check_folders(cfg) -> None:
    """results_dir must be a folder (or not exist yet); data_dir, where it exists, a readable folder."""
    results_dir, data_dir = Path(cfg.results_dir), Path(cfg.data_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise UsageError(f"results_dir={results_dir} is a file, not a folder; give a folder (default: runs)")
    if data_dir.exists() and not (data_dir.is_dir() and os.access(data_dir, os.R_OK | os.X_OK)):
        raise UsageError(f"data_dir={data_dir} is not a readable folder; give one you can read "
                         "(default: $TIMETRIAL_DATA_DIR or data)")


if __name__ == "__main__":
    sys.exit(main())
