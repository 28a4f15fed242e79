"""`timetrial reproduce`: paper configs, the table renderer, the claim classifier and the ledger."""

import dataclasses
import math

import pytest

from harness.commands import cli
from harness.core.results import RESULT_FILE, TrialRecord, read_result
from harness.study import reproduce
from harness.study.reproduce import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Metric


def trial_record(**fields) -> TrialRecord:
    """A record with the identity fields every record has, and `fields`."""
    return TrialRecord(**{"workload": "logreg_wine", "submission": "adamw", "preset": "cpu", "seed": 1,
                          "ruleset": "self", "tag": "self/study1", "study": 1, "status": "reached", **fields})


def raw_paper(**changes):
    raw = {"title": "A paper", "arxiv": "0000.00000", "table": "Table 1",
           "submissions": ["sgd_momentum", {"submission": "adamw", "ruleset": "external"}],
           "workloads": ["logreg_wine", "logreg_digits"],
           "metrics": ["steps_to_target", {"name": "validation_accuracy", "direction": "max"}],
           "claims": [{"text": "SGD is 2x faster", "method": "sgd_momentum", "baseline": "adamw",
                       "metric": "steps_to_target", "kind": "relative", "paper_value": 2.0, "tolerance": 0.1}]}
    return {**raw, **changes}


def values_for(paper, method_steps, baseline_steps, workload="logreg_wine"):
    """(label, workload, metric) -> {study: value}, as study_values builds it from trial records."""
    sgd, adamw = (e.label for e in paper.entries)
    return {(sgd, workload, "steps_to_target"): dict(enumerate(method_steps, start=1)),
            (adamw, workload, "steps_to_target"): dict(enumerate(baseline_steps, start=1))}


def test_every_paper_config_parses_and_names_known_submissions():
    names = reproduce.available_papers()
    assert {"sophia", "adan", "schedule_refinement", "prodigy", "dog", "lion", "one_cycle", "adahessian",
            "sam", "turbo_muon"} <= set(names)
    for name in names:
        paper = reproduce.load_paper(name)
        assert paper.claims, f"{name} has no claim"
        for claim in paper.claims:
            assert claim.threshold <= (claim.paper_value if claim.paper_value is not None else claim.threshold)


def test_bad_configs_name_the_bad_key():
    with pytest.raises(reproduce.ReproduceConfigError, match="workload 'cifar99' does not exist; valid: .*logreg_wine"):
        reproduce.parse_paper("x", raw_paper(workloads=["cifar99"]))
    with pytest.raises(reproduce.ReproduceConfigError, match="missing key 'workloads'"):
        reproduce.parse_paper("x", {k: v for k, v in raw_paper().items() if k != "workloads"})
    with pytest.raises(reproduce.ReproduceConfigError, match="'validation_loss' needs a direction"):
        reproduce.parse_paper("x", raw_paper(metrics=["validation_loss"]))
    bad_claim = dict(raw_paper()["claims"][0], baseline="lion")
    with pytest.raises(reproduce.ReproduceConfigError, match="claim names submission 'lion'"):
        reproduce.parse_paper("x", raw_paper(claims=[bad_claim]))
    with pytest.raises(reproduce.ReproduceConfigError, match="ruleset 'tuned'; valid"):
        reproduce.parse_paper("x", raw_paper(submissions=[{"submission": "adamw", "ruleset": "tuned"}]))
    with pytest.raises(reproduce.ReproduceConfigError, match="unknown keys \\['lr'\\].*valid keys: .*hyperparameters"):
        reproduce.parse_paper("x", raw_paper(submissions=["sgd_momentum", {"submission": "adamw", "lr": 0.1}]))
    with pytest.raises(reproduce.ReproduceConfigError, match="'adamw' has no hyperparameter\\(s\\) \\['lr'\\]; "
                                                             "valid: .*'learning_rate'"):
        reproduce.parse_paper("x", raw_paper(submissions=["sgd_momentum", {"submission": "adamw",
                                                                           "hyperparameters": {"lr": 0.1}}]))
    with pytest.raises(reproduce.ReproduceConfigError, match="max_steps='half'; valid: an integer, step_hint"):
        reproduce.parse_paper("x", raw_paper(max_steps="half"))
    with pytest.raises(reproduce.ReproduceConfigError, match="no reproduce config 'nope'.*sophia"):
        reproduce.load_paper("nope")


def test_classifier_supported_not_supported_and_inconclusive_when_seeds_disagree():
    assert reproduce.classify([2.1, 1.9, 2.5], threshold=1.8) == SUPPORTED
    assert reproduce.classify([1.1, 0.9, 1.3], threshold=1.8) == NOT_SUPPORTED
    assert reproduce.classify([2.4, 1.2, 2.0], threshold=1.8) == INCONCLUSIVE  # seeds straddle the threshold
    assert reproduce.classify([2.4, math.nan], threshold=1.8) == INCONCLUSIVE  # one study: neither reached
    assert reproduce.classify([], threshold=1.8) == INCONCLUSIVE
    assert reproduce.classify([math.inf], threshold=1.8) == SUPPORTED  # only the method reached the target


def test_advantage_directions_and_kinds():
    assert reproduce.advantage("relative", "min", method=50, baseline=100) == 2.0  # half the steps
    assert reproduce.advantage("relative", "max", method=0.9, baseline=0.6) == pytest.approx(1.5)
    assert reproduce.advantage("absolute", "max", method=0.91, baseline=0.90) == pytest.approx(0.01)
    assert reproduce.advantage("absolute", "min", method=2.0, baseline=2.5) == pytest.approx(0.5)
    assert reproduce.advantage("relative", "min", method=math.inf, baseline=100) == 0.0  # the method missed
    assert math.isnan(reproduce.advantage("relative", "min", method=math.inf, baseline=math.inf))


def test_claim_lines_on_fixed_inputs():
    paper = reproduce.parse_paper("x", raw_paper(workloads=["logreg_wine"]))
    supported = reproduce.outcome(paper, values_for(paper, [40, 50, 45], [100, 100, 100]), "cpu", "box")
    assert supported["claims"][0]["verdict"] == SUPPORTED
    assert supported["claims"][0]["advantages"] == pytest.approx([2.5, 2.0, 100 / 45])
    not_supported = reproduce.outcome(paper, values_for(paper, [90, 100, 95], [100, 100, 100]), "cpu", "box")
    line = not_supported["claims"][0]["line"]
    assert "paper: 2x, counted as supported from 1.8x" in line and line.endswith("→ not supported at this scale")
    disagree = reproduce.outcome(paper, values_for(paper, [40, 100, 45], [100, 100, 100]), "cpu", "box")
    assert disagree["claims"][0]["verdict"] == INCONCLUSIVE
    assert "range 1x to 2.5x over 3 seeds)" in disagree["claims"][0]["line"]
    inf = math.inf
    baseline_missed = reproduce.outcome(paper, values_for(paper, [40, 50], [inf, inf]), "cpu", "box")["claims"][0]
    assert baseline_missed["verdict"] == SUPPORTED and "ours on logreg_wine (steps_to_target, cpu): +inf" in \
        baseline_missed["line"]
    one_undefined = reproduce.outcome(paper, values_for(paper, [40, inf], [100, inf]), "cpu", "box")["claims"][0]
    assert one_undefined["verdict"] == INCONCLUSIVE and "over 2 seeds, 1 undefined)" in one_undefined["line"]
    all_undefined = reproduce.outcome(paper, values_for(paper, [inf, inf], [inf, inf]), "cpu", "box")["claims"][0]
    assert all_undefined["verdict"] == INCONCLUSIVE and "cpu): undefined in every seed (on one of the workloads " \
        "neither side reached the target)" in all_undefined["line"]


def test_relative_claim_is_a_geometric_mean_over_workloads():
    paper = reproduce.parse_paper("x", raw_paper())
    values = {**values_for(paper, [25], [100], "logreg_wine"), **values_for(paper, [100], [100], "logreg_digits")}
    claim = paper.claims[0]
    assert reproduce.claim_advantages(claim, paper.metric(claim.metric), values,
                                      {e.submission: e.label for e in paper.entries}) == pytest.approx([2.0])


def test_render_table_mean_spread_and_misses():
    paper = reproduce.parse_paper("x", raw_paper(workloads=["logreg_wine"], metrics=["steps_to_target"]))
    table = reproduce.render_table(paper, values_for(paper, [10, 20, math.inf], [math.inf, math.inf]))
    assert table.splitlines() == [
        "| method | logreg_wine steps_to_target |",
        "|---|---|",
        "| sgd_momentum (defaults) | 15 ± 7.1 (1/3 missed) |",
        "| adamw (tuned) | not reached (2/2) |",
    ]
    assert reproduce.summarize([]) == "pending"


def test_metric_values_from_records():
    reached = trial_record(steps_to_target=30, time_to_target_s=1.5, best_metric=1e-3,
                           final_metrics={"validation_accuracy": 0.9})
    assert Metric("steps_to_target").value(reached) == 30
    assert Metric("validation_accuracy", "max").value(reached) == 0.9
    assert Metric("best_metric").value(reached) == 1e-3
    missed = dataclasses.replace(reached, status="budget", steps_to_target=None)
    assert Metric("steps_to_target").value(missed) == math.inf
    failed = trial_record(status="failed")
    assert Metric("validation_accuracy", "max").value(failed) == -math.inf
    with pytest.raises(reproduce.ReproduceConfigError, match="'f1' is not among logreg_wine's eval metrics"):
        Metric("f1", "max").value(reached)


def test_ledger_merges_runs_and_lists_papers_not_run(tmp_path):
    paper = reproduce.load_paper("sophia")
    sophia, adamw = (e.label for e in paper.entries)
    values = {(sophia, "gpt2", "steps_to_target"): {1: 50.0}, (adamw, "gpt2", "steps_to_target"): {1: 100.0}}
    first = reproduce.outcome(paper, values, "cpu", "some CPU")
    reproduce.update_ledger(tmp_path, [first], note="shared machine")
    again = reproduce.outcome(paper, values, "tiny", "some CPU")
    text = reproduce.update_ledger(tmp_path, [again]).read_text()
    assert "Outcome at preset `cpu` on some CPU" in text and "Note: shared machine" in text
    assert "Outcome at preset `tiny`" in text and "→ supported at this scale" in text
    assert "## lion:" in text and "not run on this machine yet" in text
    assert "- gpt2: GPT decoder language model" in text and "data: real: Shakespeare" in text  # which model, which data
    summary = reproduce.ledger_summary(tmp_path)
    assert "| sophia | Sophia needs 2x fewer steps than AdamW to reach the same validation loss on GPT-2 | cpu, " \
           "some CPU" in summary and summary.count("| supported |") == 2


def test_the_date_of_an_outcome_is_the_day_its_newest_trial_ran():
    queued = trial_record(status="queued")
    records = [trial_record(provenance={"timestamp": "2026-11-23T21:11:15+00:00"}),
               trial_record(provenance={"timestamp": "2026-11-24T01:02:03+00:00"}), queued]
    assert reproduce.run_date(records) == "2026-11-24"
    assert reproduce.run_date([queued]) is None
    paper = reproduce.load_paper("sophia")
    assert reproduce.outcome(paper, {}, "cpu", "some CPU", date="2026-11-24")["date"] == "2026-11-24"


def test_trials_from_two_machines_or_two_targets_make_every_claim_inconclusive():
    def record(fingerprint, target=3.0, workload="gpt2"):
        return trial_record(workload=workload, target_value=target,
                            provenance={"hardware": {"fingerprint": fingerprint}})

    assert reproduce.incomparable([record("a"), record("a"), trial_record(status="queued")]) == ""
    assert reproduce.incomparable([record("a"), record("b")]).startswith("trials from 2 machines (a, b)")
    assert reproduce.incomparable([record("a", 3.0), record("a", 2.7), record("a", 1.0, "vit")]).startswith(
        "trials with different targets on gpt2")
    paper = reproduce.load_paper("sophia")
    sophia, adamw = (e.label for e in paper.entries)
    values = {(sophia, "gpt2", "steps_to_target"): {1: 50.0}, (adamw, "gpt2", "steps_to_target"): {1: 100.0}}
    assert reproduce.outcome(paper, values, "cpu", "x")["claims"][0]["verdict"] == SUPPORTED
    mixed = reproduce.outcome(paper, values, "cpu", "x", caveat="trials from 2 machines (a, b)")["claims"][0]
    assert mixed["verdict"] == INCONCLUSIVE and mixed["line"].endswith("→ inconclusive at this scale "
                                                                        "(trials from 2 machines (a, b))")


def test_cli_usage_errors(capsys):
    assert cli.main(["reproduce", "nope"]) == 2
    assert "no reproduce config 'nope'" in capsys.readouterr().err
    assert cli.main(["reproduce", "sophia", "--ledgr"]) == 2
    assert "unknown flag(s) ['--ledgr']; valid: --ledger" in capsys.readouterr().err
    assert cli.main(["reproduce", "list"]) == 0
    assert "schedule_refinement" in capsys.readouterr().out


def test_run_paper_reuses_finished_trials(tmp_path, data_dir):
    at_paper_settings = {"submission": "adamw", "hyperparameters": {"learning_rate": 0.002, "beta2": 0.95},
                         "source": "the paper's Table 9"}
    paper = reproduce.parse_paper("x", raw_paper(workloads=["logreg_wine"],
                                                 submissions=["sgd_momentum", at_paper_settings]))
    cfg = cli.load_config(["preset=tiny", "reproduce.studies=2", "max_steps=3", "progress=false",
                           f"results_dir={tmp_path}", f"data_dir={data_dir}"])
    first = reproduce.run_paper(paper, cfg, {"beta2": 0.9})
    files = sorted(tmp_path.rglob(RESULT_FILE))
    assert len(files) == 4  # 2 submissions x 1 workload x 2 studies
    assert "| sgd_momentum (defaults) |" in first["markdown"] and "| adamw (settings below) |" in first["markdown"]
    records = [read_result(path.parent) for path in files]
    adamw = [r.hyperparameters for r in records if r.submission == "adamw"]
    # the paper's settings over the defaults, and the command line's hp.* over the paper's
    assert all(h["learning_rate"] == 0.002 and h["beta2"] == 0.9 and h["one_minus_beta1"] == 0.1 for h in adamw)
    assert first["settings"] == ["adamw (settings below): learning_rate=0.002, beta2=0.95 (the paper's Table 9)"]
    assert "Settings:\n- adamw (settings below): learning_rate=0.002" in reproduce.render_outcome(first)
    assert first["date"] == max(r.provenance["timestamp"] for r in records)[:10]
    assert len(first["claims"][0]["advantages"]) == 2 and first["claims"][0]["line"].endswith("at this scale")
    stamps = [p.stat().st_mtime_ns for p in files]
    again = reproduce.run_paper(paper, cfg)
    assert again["markdown"] == first["markdown"]
    assert [p.stat().st_mtime_ns for p in files] == stamps  # nothing trained again


@pytest.mark.slow
def test_every_table_runs_at_tiny_and_writes_the_ledger(tmp_path, data_dir, capsys):
    assert cli.main(["reproduce", "all", "preset=tiny", "reproduce.studies=1", "reproduce.trials=1", "max_steps=1",
                     "progress=false", f"results_dir={tmp_path}", f"data_dir={data_dir}", "--ledger"]) == 0
    out = capsys.readouterr().out
    ledger = (tmp_path / "claims.md").read_text()
    for name in reproduce.available_papers():
        assert f"## {name}:" in out
        assert f"timetrial reproduce {name} preset=cpu" in ledger
    assert ledger.count("Outcome at preset `tiny`") == len(reproduce.available_papers())
    assert "not run on this machine yet" not in ledger
