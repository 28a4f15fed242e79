"""Reproduce a paper's comparison table on common ground, and check its headline claim.

One hydra config per paper, `configs/reproduce/<paper>.yaml`, names the submissions (each with its
tuning ruleset), the workloads, the metrics the paper's table reports and the claims as numbers.
The trials are ordinary study grids (harness/study/tuning.py) run through `harness.study.sweep.launch`, so
they land in the usual results tree and a second `reproduce` reuses every finished trial.

Seeds are studies: study k of every submission trains with seed `seed + k`, so the run-to-run
spread is over studies and a claim compares the two methods study by study.

A claim is an *advantage* of `method` over `baseline` on one metric, per study:

    relative:  baseline / method  (metric to minimise)   or  method / baseline  (to maximise)
    absolute:  baseline - method  (metric to minimise)   or  method - baseline  (to maximise)

averaged over the claim's workloads (geometric mean for relative, mean for absolute). It is
*supported at this scale* when every study's advantage reaches the threshold, *not supported* when
none does, and *inconclusive* when the studies disagree or an advantage is undefined (neither
method reached the target). The threshold is the paper's number less a tolerance
(`paper_value * (1 - tolerance)` for relative claims, `paper_value - tolerance` for absolute ones).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from harness.core import registry
from harness.core.results import FINISHED, TrialRecord, atomic_write_json, atomic_write_text
from harness.core.submission import load_submission
from harness.study import sweep
from harness.study.config import load_config, trial_spec
from harness.study.tuning import RULESETS, study_grid

PAPERS_DIR = Path(__file__).resolve().parents[2] / "configs" / "reproduce"
LEDGER_JSON = "claims.json"  # outcomes per paper; claims.md is rendered from it
LEDGER_MD = "claims.md"

#: Metrics every trial record has, with the direction that is better.
RECORD_METRICS = {"steps_to_target": "min", "time_to_target_s": "min"}
KINDS = ("relative", "absolute")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


class ReproduceConfigError(ValueError):
    """A configs/reproduce/<paper>.yaml that cannot be run; the message names the key and the file."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """A column of the table: `steps_to_target`, `time_to_target_s`, `best_metric` (the workload's
    target metric, best over evals), or any eval metric's final value (`direction` required)."""

    name: str
    direction: str | None = None  # None: from RECORD_METRICS, or the workload's target direction

    def direction_for(self, workload: str) -> str:
        if self.direction is not None:
            return self.direction
        return RECORD_METRICS.get(self.name) or registry.workload_class(workload).target_direction

    def value(self, record: TrialRecord) -> float:
        """The metric in one trial record; a target never reached is inf steps/seconds, a failed or
        unsupported trial is the worst value of the metric's direction."""
        worst = math.inf if self.direction_for(record.workload) == "min" else -math.inf
        if record.status not in ("reached", "budget", "diverged"):
            return worst
        if self.name in (*RECORD_METRICS, "best_metric"):
            value = getattr(record, self.name)
        else:
            finals = record.final_metrics or {}
            if self.name not in finals:
                raise ReproduceConfigError(
                    f"metric {self.name!r} is not among {record.workload}'s eval metrics; valid: "
                    f"{sorted([*RECORD_METRICS, 'best_metric', *finals])}")
            value = finals[self.name]
        return worst if value is None or not math.isfinite(float(value)) else float(value)


@dataclasses.dataclass(frozen=True)
class Claim:
    text: str
    method: str
    baseline: str
    metric: str
    kind: str  # relative | absolute
    paper_value: float | None  # None: the paper says "better" without one number (no advantage: 1x or +0)
    tolerance: float = 0.0
    workloads: tuple[str, ...] = ()  # empty: every workload of the paper

    @property
    def threshold(self) -> float:
        if self.kind == "relative":
            return (1.0 if self.paper_value is None else self.paper_value) * (1.0 - self.tolerance)
        return (0.0 if self.paper_value is None else self.paper_value) - self.tolerance

    def unit(self, value: float) -> str:
        if math.isinf(value):
            return f"{value:+}"  # one side never reached the target
        return f"{value:.3g}x" if self.kind == "relative" else f"{value:+.3g}"

    @property
    def paper_says(self) -> str:
        return "better (no single number)" if self.paper_value is None else self.unit(self.paper_value)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the table: a submission under a tuning ruleset, optionally at the hyperparameters
    the paper ran it with (over its defaults, or pinned over every tuning point); `source` says where
    they come from. A baseline's timetrial defaults are tuned on the logistic-regression suite, and
    a paper compares against its baseline at the settings of its own domain."""

    submission: str
    ruleset: str = "self"
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    @property
    def label(self) -> str:
        how = "tuned" if self.ruleset == "external" else "settings below" if self.hyperparameters else "defaults"
        return f"{self.submission} ({how})"

    @property
    def settings_line(self) -> str:
        values = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                           for name, value in self.hyperparameters.items())
        return f"{self.label}: {values}" + (f" ({self.source})" if self.source else "")


@dataclasses.dataclass(frozen=True)
class Paper:
    name: str
    title: str
    arxiv: str
    table: str  # which table or figure of the paper this reproduces
    entries: tuple[Entry, ...]
    workloads: tuple[str, ...]
    metrics: tuple[Metric, ...]
    claims: tuple[Claim, ...]
    studies: int = 3
    trials: int = 5  # external tuning: points per study
    stop_at_target: bool = True
    budget_multiplier: float = 1.0
    max_steps: int | str | None = None  # an int, "step_hint" (the workload's), or None (time budget only)

    def metric(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise ReproduceConfigError(f"{self.name}: claim metric {name!r} is not in metrics "
                                   f"{[m.name for m in self.metrics]}")


def available_papers() -> list[str]:
    return sorted(path.stem for path in PAPERS_DIR.glob("*.yaml"))


def load_paper(name: str) -> Paper:
    """Compose configs/reproduce/<name>.yaml with hydra and check it against the registries."""

    if name not in available_papers():
        raise ReproduceConfigError(f"no reproduce config {name!r} (configs/reproduce/{name}.yaml); "
                                   f"valid: {available_papers() + ['all']}")
    raw = OmegaConf.to_container(load_config([], config_name=f"reproduce/{name}"), resolve=True)
    return parse_paper(name, raw)


def parse_paper(name: str, raw: Mapping[str, Any]) -> Paper:
    where = f"configs/reproduce/{name}.yaml"

    def need(mapping: Mapping[str, Any], key: str, context: str = "") -> Any:
        if key not in mapping:
            raise ReproduceConfigError(f"{where}: {context}missing key {key!r} (has: {sorted(mapping)})")
        return mapping[key]

    entries = []
    entry_keys = [field.name for field in dataclasses.fields(Entry)]
    for item in need(raw, "submissions"):
        item = dict(item) if isinstance(item, Mapping) else {"submission": str(item)}
        unknown = sorted(set(item) - set(entry_keys))
        if unknown or "submission" not in item:
            raise ReproduceConfigError(f"{where}: submissions entry {item} has unknown keys {unknown} or no "
                                       f"'submission'; valid keys: {entry_keys}")
        entry = Entry(**item)
        if entry.ruleset not in RULESETS:
            raise ReproduceConfigError(f"{where}: submission {entry.submission!r} has ruleset "
                                       f"{entry.ruleset!r}; valid: {list(RULESETS)}")
        check_hyperparameters(entry, where)
        entries.append(entry)
    workloads = tuple(need(raw, "workloads"))
    known = registry.workload_classes()
    for workload in workloads:
        if workload not in known:
            raise ReproduceConfigError(f"{where}: workload {workload!r} does not exist; valid: {sorted(known)}")
    metrics = tuple(Metric(**m) if isinstance(m, Mapping) else Metric(str(m)) for m in need(raw, "metrics"))
    for metric in metrics:
        if metric.direction not in (None, "min", "max"):
            raise ReproduceConfigError(f"{where}: metric {metric.name!r} direction {metric.direction!r}; "
                                       "valid: min, max")
        if metric.direction is None and metric.name not in (*RECORD_METRICS, "best_metric"):
            raise ReproduceConfigError(f"{where}: metric {metric.name!r} needs a direction (min or max); "
                                       f"only {sorted([*RECORD_METRICS, 'best_metric'])} have their own")
    labels = {e.submission for e in entries}
    claims = []
    for item in raw.get("claims") or []:
        fields = {key: need(item, key, "claim: ") for key in ("text", "method", "baseline", "metric", "kind",
                                                                "paper_value")}
        claim = Claim(**fields, tolerance=float(item.get("tolerance", 0.0)),
                      workloads=tuple(item.get("workloads") or workloads))
        if claim.kind not in KINDS:
            raise ReproduceConfigError(f"{where}: claim kind {claim.kind!r}; valid: {list(KINDS)}")
        for side in (claim.method, claim.baseline):
            if side not in labels:
                raise ReproduceConfigError(f"{where}: claim names submission {side!r}, which is not in "
                                           f"submissions {sorted(labels)}")
        for workload in claim.workloads:
            if workload not in workloads:
                raise ReproduceConfigError(f"{where}: claim workload {workload!r} is not in workloads {list(workloads)}")
        claims.append(claim)
    paper = Paper(name=name, title=need(raw, "title"), arxiv=str(raw.get("arxiv", "")), table=need(raw, "table"),
                  entries=tuple(entries), workloads=workloads, metrics=metrics, claims=tuple(claims),
                  studies=int(raw.get("studies", 3)), trials=int(raw.get("trials", 5)),
                  stop_at_target=bool(raw.get("stop_at_target", True)),
                  budget_multiplier=float(raw.get("budget_multiplier", 1.0)), max_steps=raw.get("max_steps"))
    for claim in claims:
        paper.metric(claim.metric)
    if not (paper.max_steps in (None, "step_hint") or isinstance(paper.max_steps, int)):
        raise ReproduceConfigError(f"{where}: max_steps={paper.max_steps!r}; valid: an integer, step_hint or null")
    return paper


def check_hyperparameters(entry: Entry, where: str) -> None:

    if not entry.hyperparameters:
        return
    known = load_submission(entry.submission).default_hyperparameters()
    unknown = sorted(set(entry.hyperparameters) - set(known))
    if unknown:
        raise ReproduceConfigError(f"{where}: submission {entry.submission!r} has no hyperparameter(s) {unknown}; "
                                   f"valid: {sorted(known)}")


# ---- running ------------------------------------------------------------------------------------

def paper_specs(paper: Paper, cfg: DictConfig, hyperparameters: Mapping[str, Any]) -> list:
    """The study grids of every (submission, workload) of the paper at `cfg.preset`. The command
    line's `max_steps`, `reproduce.studies`, `reproduce.trials` and `budget_multiplier` (as a factor)
    override the paper's."""

    studies = cfg.reproduce.studies or paper.studies
    trials = cfg.reproduce.trials or paper.trials
    specs = []
    for entry in paper.entries:
        submission = load_submission(entry.submission)
        for workload in paper.workloads:
            template = dataclasses.replace(
                trial_spec(cfg, workload, entry.submission, {}, ruleset="reproduce"),
                stop_at_target=paper.stop_at_target,
                budget_multiplier=cfg.budget_multiplier * paper.budget_multiplier,
                max_steps=cfg.max_steps or resolve_max_steps(paper.max_steps, workload, cfg))
            specs += study_grid(submission, template, entry.ruleset, trials, studies,
                                {**entry.hyperparameters, **hyperparameters})
    return specs


def resolve_max_steps(max_steps: int | str | None, workload: str, cfg: DictConfig) -> int | None:
    if max_steps == "step_hint":
        return registry.make_workload(workload, cfg.preset, cfg.data_dir).step_hint
    return max_steps


def study_values(paper: Paper, records: Sequence[TrialRecord]) -> dict[tuple[str, str, str], dict[int, float]]:
    """(row label, workload, metric) -> {study: value}: each study's best trial on that metric."""
    by_submission = {e.submission: e for e in paper.entries}
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for record in records:
        if record.status not in (*FINISHED, "failed"):
            continue  # queued or running under a cluster launcher: not in the table yet
        study = record.study
        label = by_submission[record.submission].label
        for metric in paper.metrics:
            value = metric.value(record)
            better = min if metric.direction_for(record.workload) == "min" else max
            cell = values.setdefault((label, record.workload, metric.name), {})
            cell[study] = value if study not in cell else better(cell[study], value)
    return values


def run_paper(paper: Paper, cfg: DictConfig, hyperparameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run (or reuse) the paper's trials and return its outcome: the table and the claim verdicts."""

    specs = paper_specs(paper, cfg, hyperparameters or {})
    records = sweep.launch(specs, cfg)
    return outcome(paper, study_values(paper, records), cfg.preset, hardware_label(records),
                   pending=sum(r.status == "queued" for r in records), date=run_date(records),
                   caveat=incomparable(records))


def incomparable(records: Sequence[TrialRecord]) -> str:
    """Why the table's trials cannot be compared ('' when they can): a finished trial is reused
    whatever machine ran it, so a results tree carried to other hardware, or a recalibrated target,
    can put two machines' clocks or two targets into one table."""
    ran = [r for r in records if r.provenance is not None]
    machines = sorted({r.provenance["hardware"].get("fingerprint", "unknown") for r in ran})
    if len(machines) > 1:
        return (f"trials from {len(machines)} machines ({', '.join(machines)}): rerun the paper on one machine "
                "with force=true")
    targets = {}
    for record in ran:
        targets.setdefault(record.workload, set()).add(record.target_value)
    differing = sorted(w for w, values in targets.items() if len(values) > 1)
    if differing:
        return f"trials with different targets on {', '.join(differing)}: rerun the paper with force=true"
    return ""


def hardware_label(records: Sequence[TrialRecord]) -> str:
    labels = {r.provenance["hardware"]["label"] for r in records if r.provenance is not None}
    return ", ".join(sorted(labels)) or "unknown"


def run_date(records: Sequence[TrialRecord]) -> str | None:
    """The day the newest trial of the table finished (a rerun that reuses them is not a new run)."""
    stamps = [r.provenance["timestamp"] for r in records if "timestamp" in (r.provenance or {})]
    return max(stamps)[:10] if stamps else None


# ---- the table and the claims --------------------------------------------------------------------

def summarize(values: Sequence[float]) -> str:
    """mean ± standard deviation over studies; misses (inf) are counted, not averaged."""
    finite = [v for v in values if math.isfinite(v)]
    if not values:
        return "pending"
    if not finite:
        return f"not reached ({len(values)}/{len(values)})"
    text = f"{np.mean(finite):.4g}"
    if len(finite) > 1:
        text += f" ± {np.std(finite, ddof=1):.2g}"
    misses = len(values) - len(finite)
    return text + (f" ({misses}/{len(values)} missed)" if misses else "")


def render_table(paper: Paper, values: Mapping[tuple[str, str, str], Mapping[int, float]]) -> str:
    """Markdown: one row per submission, one column per (workload, metric), mean ± sd over studies."""
    columns = [(w, m.name) for w in paper.workloads for m in paper.metrics]
    titles = [f"{w} best {registry.workload_class(w).target_metric}" if m == "best_metric" else f"{w} {m}"
              for w, m in columns]
    header = "| method | " + " | ".join(titles) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for entry in paper.entries:
        cells = [summarize(list(values.get((entry.label, w, m), {}).values())) for w, m in columns]
        lines.append(f"| {entry.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def advantage(kind: str, direction: str, method: float, baseline: float) -> float:
    """How much better `method` is than `baseline` (see the module docstring); nan when undefined."""
    better_first = (baseline, method) if direction == "min" else (method, baseline)
    top, bottom = better_first
    if kind == "absolute":
        with np.errstate(invalid="ignore"):
            return float(np.subtract(top, bottom))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(top, bottom)) if bottom != 0 else math.nan


def claim_advantages(claim: Claim, metric: Metric, values: Mapping[tuple[str, str, str], Mapping[int, float]],
                     labels: Mapping[str, str]) -> list[float]:
    """One advantage per study present for both sides, averaged over the claim's workloads."""
    per_workload = []
    for workload in claim.workloads:
        method = values.get((labels[claim.method], workload, claim.metric), {})
        baseline = values.get((labels[claim.baseline], workload, claim.metric), {})
        studies = sorted(set(method) & set(baseline))
        direction = metric.direction_for(workload)
        per_workload.append({s: advantage(claim.kind, direction, method[s], baseline[s]) for s in studies})
    studies = sorted(set.intersection(*(set(w) for w in per_workload))) if per_workload else []
    combined = []
    for study in studies:
        parts = np.array([w[study] for w in per_workload])
        if claim.kind == "relative":
            with np.errstate(divide="ignore", invalid="ignore"):
                combined.append(float(np.exp(np.mean(np.log(parts)))) if (parts > 0).all() else math.nan)
        else:
            combined.append(float(np.mean(parts)))
    return combined


def classify(advantages: Sequence[float], threshold: float) -> str:
    """supported: every study reaches the threshold; not supported: none does; inconclusive:
    studies disagree, or some advantage is undefined (nan), or there is none."""
    if not advantages or any(math.isnan(a) for a in advantages):
        return INCONCLUSIVE
    reached = [a >= threshold for a in advantages]
    if all(reached):
        return SUPPORTED
    if not any(reached):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def claim_line(claim: Claim, advantages: Sequence[float], preset: str, caveat: str = "") -> dict[str, Any]:
    """The claim's verdict and its line; a `caveat` (the trials are not comparable) makes it inconclusive."""
    verdict = INCONCLUSIVE if caveat else classify(advantages, claim.threshold)
    defined = [a for a in advantages if not math.isnan(a)]
    if not advantages:
        ours = "no finished studies"
    elif not defined:
        ours = "undefined in every seed (on one of the workloads neither side reached the target)"
    else:
        ours = claim.unit(float(np.mean(defined)))
        if len(advantages) == 1:
            ours += " (1 seed: no spread)"
        else:
            ours += f" (range {claim.unit(min(defined))} to {claim.unit(max(defined))} over {len(advantages)} seeds"
            undefined = len(advantages) - len(defined)
            ours += f", {undefined} undefined)" if undefined else ")"
    text = (f"{claim.text} — paper: {claim.paper_says}, counted as supported from "
            f"{claim.unit(claim.threshold)}; ours on {', '.join(claim.workloads)} ({claim.metric}, {preset}): "
            f"{ours} → {verdict} at this scale" + (f" ({caveat})" if caveat else ""))
    return {"claim": claim.text, "verdict": verdict, "advantages": list(advantages), "line": text}


def outcome(paper: Paper, values: Mapping[tuple[str, str, str], Mapping[int, float]], preset: str,
            hardware: str, pending: int = 0, date: str | None = None, caveat: str = "") -> dict[str, Any]:
    labels = {e.submission: e.label for e in paper.entries}
    claims = []
    for claim in paper.claims:
        advantages = claim_advantages(claim, paper.metric(claim.metric), values, labels)
        claims.append(claim_line(claim, advantages, preset, caveat))
    return {"paper": paper.name, "title": paper.title, "arxiv": paper.arxiv, "table": paper.table,
            "preset": preset, "hardware": hardware, "pending_trials": pending,
            "date": date or datetime.date.today().isoformat(), "markdown": render_table(paper, values),
            "claims": claims, "workloads": workload_lines(paper),
            "settings": [e.settings_line for e in paper.entries if e.hyperparameters]}


def workload_lines(paper: Paper) -> list[str]:
    """What each workload of the table is (model, data): at `cpu` a paper's CIFAR or GPT-2 claim meets
    a small model on small data, and the reader of a verdict should see which."""
    classes = {w: registry.workload_class(w) for w in paper.workloads}
    return [f"{w}: {cls.description}; data: {cls.data_description or 'see the workload'}" for w, cls in classes.items()]


def notes_block(result: Mapping[str, Any]) -> list[str]:
    """What the table's rows and columns are: the settings of rows not at their defaults, and each
    workload's model and data at the preset."""
    lines = []
    for key, title in (("settings", "Settings"), ("workloads", "Workloads")):
        if result.get(key):
            lines += [f"{title}:"] + [f"- {line}" for line in result[key]] + [""]
    return lines


def render_outcome(result: Mapping[str, Any]) -> str:
    arxiv = f" (arXiv:{result['arxiv']})" if result["arxiv"] else ""
    lines = [f"## {result['paper']}: {result['title']}{arxiv}",
             f"{result['table']} — preset `{result['preset']}`, {result['hardware']}", "", result["markdown"], "",
             *notes_block(result)]
    if result["pending_trials"]:
        lines.append(f"{result['pending_trials']} trials still queued or running; run the command again later.\n")
    lines += [f"- {claim['line']}" for claim in result["claims"]]
    return "\n".join(lines)


# ---- the claims ledger ---------------------------------------------------------------------------

def update_ledger(results_dir: Path | str, outcomes: Sequence[Mapping[str, Any]], note: str = "") -> Path:
    """Merge `outcomes` into <results_dir>/claims.json (one entry per paper and preset) and render
    <results_dir>/claims.md from it, listing every paper with a claim, run or not."""
    results_dir = Path(results_dir)
    stored = json.loads((results_dir / LEDGER_JSON).read_text()) if (results_dir / LEDGER_JSON).exists() else {}
    for result in outcomes:
        stored[f"{result['paper']}/{result['preset']}"] = {**result, "note": note}
    atomic_write_json(results_dir / LEDGER_JSON, stored)
    path = results_dir / LEDGER_MD
    atomic_write_text(path, render_ledger(stored))
    return path


def render_ledger(stored: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["# Claims ledger", "",
             "Each paper's headline claim as a number, checked on common ground with `timetrial reproduce`.",
             "Verdicts say whether *our run at this scale* supports the claim, never whether the paper is right:",
             "the `cpu` presets are tiny models on small data, and the paper's claims are about its own scale.",
             "Generated by `timetrial reproduce all preset=cpu --ledger` (or one paper at a time); do not edit.", ""]
    for name in available_papers():
        paper = load_paper(name)
        if not paper.claims:
            continue
        runs = [v for k, v in sorted(stored.items()) if k.split("/")[0] == name]
        lines += [f"## {name}: {paper.title}" + (f" (arXiv:{paper.arxiv})" if paper.arxiv else ""), "",
                  f"Table: {paper.table}. Command: `timetrial reproduce {name} preset=cpu`", ""]
        lines += [f"- Claim: {claim.text} (paper: {claim.paper_says})" for claim in paper.claims]
        if not runs:
            lines += ["- Outcome: not run on this machine yet.", ""]
            continue
        for run in runs:
            note = f" Note: {run['note']}" if run.get("note") else ""
            lines += [f"- Outcome at preset `{run['preset']}` on {run['hardware']}, {run['date']}.{note}", ""]
            lines += [run["markdown"], "", *notes_block(run)] + [f"- {claim['line']}" for claim in run["claims"]] + [""]
    return "\n".join(lines)


def ledger_summary(results_dir: Path | str) -> str:
    """One line per claim of <results_dir>/claims.json, for the README."""
    stored = json.loads((Path(results_dir) / LEDGER_JSON).read_text())
    lines = ["| paper | claim | preset, hardware, date | outcome at this scale |", "|---|---|---|---|"]
    for run in (stored[key] for key in sorted(stored)):
        for claim in run["claims"]:
            lines.append(f"| {run['paper']} | {claim['claim']} | {run['preset']}, {run['hardware']}, {run['date']} "
                         f"| {claim['verdict']} |")
    return "\n".join(lines) + "\n"
