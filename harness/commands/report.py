"""How boards are shown: Markdown and CSV tables, and a self-contained HTML report with performance
profiles, time-to-target bars and validation curves (matplotlib figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness.core.results import EVALS_FILE, atomic_write_text, read_jsonl
from harness.study import scoring
from harness.study.leaderboard import Board, Options

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; }
"""


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _figure().close(fig)
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _colors(submissions: list[str]) -> dict[str, tuple]:
    cmap = _figure().get_cmap("tab10")
    return {s: cmap(i % 10) for i, s in enumerate(submissions)}


def profile_figure(board: Board, options: Options):
    """rho_s(tau) for tau in [1, r_max] on the scored workloads."""
    plt = _figure()
    ratios = scoring.performance_ratios(scoring.scored_times(board.times, board.variant_of, options.variant_rule),
                                        options.r_max)
    taus = np.linspace(1.0, options.r_max, 601)
    profile = scoring.performance_profile(ratios, taus)
    colors = _colors(list(board.table.index))
    fig, ax = plt.subplots(figsize=(7, 4))
    for submission in board.table.index:
        ax.step(taus, profile.loc[submission], where="post", color=colors[submission],
                label=f"{submission} ({board.table.at[submission, 'score']:.3f})")
    ax.set(xlabel="tau (time / fastest time)", ylabel="fraction of workloads", ylim=(-0.02, 1.02),
           xlim=(1.0, options.r_max), title="Performance profiles (legend: score)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _grid(n: int, width: float = 3.6, height: float = 2.8):
    plt = _figure()
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def time_bars_figure(board: Board):
    """Per workload, each submission's time-to-target; a miss is a hatched grey bar at the budget."""
    submissions = list(board.table.index)
    workloads = list(board.times.columns)
    colors = _colors(submissions)
    times = scoring.missing_as_inf(board.times)
    fig, axes = _grid(len(workloads))
    for ax, workload in zip(axes, workloads):
        budget = board.budgets.get(workload, np.nan)
        for y, submission in enumerate(submissions):
            value = times.at[submission, workload] if submission in times.index else np.inf
            if np.isfinite(value):
                ax.barh(y, value, color=colors[submission])
            else:
                ax.barh(y, budget, color="#ddd", hatch="//", edgecolor="#999")
                ax.text(budget / 2, y, "miss (budget)", ha="center", va="center", fontsize=7)
        ax.set_yticks(range(len(submissions)), submissions, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(workload + (f" (variant of {board.variant_of[workload]})" if board.variant_of.get(workload) else ""),
                     fontsize=8)
        ax.set_xlabel("seconds to target", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return fig


def curves_figure(board: Board):
    """Per workload, the target metric against submission time for every trial; dashed: the target."""
    submissions = list(board.table.index)
    colors = _colors(submissions)
    workloads = list(board.times.columns)
    fig, axes = _grid(len(workloads))
    for ax, workload in zip(axes, workloads):
        trials = board.trials[board.trials["workload"] == workload]
        positive = True
        for trial in trials.itertuples(index=False):
            rows = read_jsonl(f"{trial.trial_dir}/{EVALS_FILE}")
            metric = getattr(trial, "target_metric", None)
            if not rows or not isinstance(metric, str):
                continue
            curve = pd.DataFrame(rows)
            values = curve[metric].astype(float)
            positive = positive and bool((values > 0).all())
            ax.plot(curve["submission_time_s"], values, color=colors.get(trial.submission, "k"), alpha=0.6, lw=1)
        if not trials.empty and "target_value" in trials and pd.notna(trials["target_value"].iloc[0]):
            ax.axhline(float(trials["target_value"].iloc[0]), color="k", ls="--", lw=0.8)
            ax.set_ylabel(str(trials["target_metric"].iloc[0]), fontsize=7)
        if positive and not trials.empty and trials["target_direction"].iloc[0] == "min":
            ax.set_yscale("log")
        ax.set_title(workload, fontsize=8)
        ax.set_xlabel("submission time [s]", fontsize=7)
        ax.tick_params(labelsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[s], label=s) for s in submissions]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(submissions), 5), fontsize=8,
               bbox_to_anchor=(0.5, 1.06))
    fig.tight_layout()
    return fig


def _table_html(table: pd.DataFrame) -> str:
    table = table.reset_index()
    return table.to_html(formatters={c: format_cell for c in table.columns}, escape=True, border=0, index=False)


def render_html(boards: list[Board], options: Options) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>timetrial leaderboard</title>"
             f"<style>{STYLE}</style></head><body><h1>timetrial leaderboard</h1>"]
    if not boards:
        parts.append("<p>(no results)</p>")
    for board in boards:
        title = html.escape(board.title.replace("`", ""))
        parts += [
            f"<h2>{title}</h2>",
            f"<p class='note'>{html.escape(note(board, options))}. Results from other hardware are on their own board.</p>",
            _table_html(display_table(board)),
            "<h3>Performance profiles</h3>", _img(figure_png(profile_figure(board, options)), "performance profiles"),
            "<h3>Time to target per workload</h3>", _img(figure_png(time_bars_figure(board)), "time to target"),
            "<h3>Validation curves (every trial)</h3>", _img(figure_png(curves_figure(board)), "validation curves"),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def format_cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return "miss"
        if math.isnan(value):
            return "-"
        return f"{value:.3g}"
    return str(value)


def display_table(board: Board) -> pd.DataFrame:
    """The board's table with each statistic's CI folded into one column, for Markdown and HTML."""
    table = board.table.copy()
    for column in [c for c in table.columns if c.endswith((" [s]", " [ref steps]", " [steps]"))]:
        values = table[column].astype(object)
        if column.endswith(" [steps]"):  # whole steps (a median over two studies may end in .5)
            values = values.map(lambda v: f"{v:,.0f}" if isinstance(v, float) and math.isfinite(v) else v)
        table[column] = values.where(table[column].notna(), "not run")
    for name in [c[:-len("_low")] for c in board.table.columns if c.endswith("_low")]:
        low, high = table.pop(f"{name}_low"), table.pop(f"{name}_high")
        ci = [f"[{format_cell(a)}, {format_cell(b)}]" for a, b in zip(low, high)]
        table.insert(table.columns.get_loc(name) + 1, f"{name} 95% CI", ci)
    return table


def note(board: Board, options: Options) -> str:
    """What the numbers on a board mean."""
    bases = sum(board.variant_of.get(w) is None for w in board.times.columns)
    rule = "on (a base workload counts only if its variants are reached too)" if options.variant_rule else "off"
    integral = ("exact integral" if options.profile_points is None
                else f"trapezoid on {options.profile_points} taus, as AlgoPerf's scoring code")
    return (f"score: AlgoPerf performance-profile score over {bases} base workloads, r_max = {options.r_max} "
            f"({integral}); "
            f"95% CI: bootstrap over studies ({options.n_boot} draws); variant rule {rule}; steps_score: the "
            "same score on steps-to-target; speedup: geometric mean of the reference's time over the "
            "submission's (a miss counts as the budget); times: median over studies of the fastest trial "
            "reaching the validation target, 'miss' = none within budget, 'not run' = no trial on that "
            "workload (scored as a miss; not_run counts them among the scored workloads); contended: trials whose "
            "clock was shared with other work or ran at another speed than their budget's measurement "
            "(leaderboard.exclude_contended=true leaves them out)"
)


def render_markdown(boards: list[Board], options: Options = Options()) -> str:
    if not boards:
        return "(no results)"
    parts = [f"### Leaderboard: {board.title}\n\n{note(board, options)}\n\n"
             + markdown_table(display_table(board).reset_index()) for board in boards]
    return "\n\n".join(parts)


def markdown_table(table: pd.DataFrame) -> str:
    """A display table as Markdown, every cell through format_cell."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def to_csv(boards: list[Board]) -> str:
    frames = [b.table.reset_index().assign(hardware=b.hardware, fingerprint=b.fingerprint,
                                           speed_calibration=b.speed_calibration, preset=b.preset,
                                           ruleset=b.ruleset, conditions=b.conditions) for b in boards]
    return pd.concat(frames).to_csv(index=False) if frames else ""


def write(boards: list[Board], results_dir: Path | str, options: Options = Options()) -> list[Path]:
    """results_dir/leaderboard.md, leaderboard.csv and report.html (all written atomically)."""
    results_dir = Path(results_dir)
    paths = [results_dir / "leaderboard.md", results_dir / "leaderboard.csv", results_dir / "report.html"]
    atomic_write_text(paths[0], render_markdown(boards, options) + "\n")
    atomic_write_text(paths[1], to_csv(boards))
    atomic_write_text(paths[2], render_html(boards, options))
    return paths
