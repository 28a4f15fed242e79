"""The runner: clock accounting, target detection, budgets, divergence, failures, results files."""

import dataclasses
import json
import time
import types
import pytest
import torch

from harness.core import results
from harness.core.closure import LOSS_EVERY
from harness.core.registry import make_workload
from harness.core.runner import TrialSpec, resolve_batch_size, run_trial, stale_reason
from harness.core import submission as submission_module
from harness.core.submission import PROJECT_ROOT, SUBMISSIONS_DIR, imported_project_files, load_submission
from harness.study.sweep import run_local
from workloads.logreg.workload import LogisticRegression


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def algoperf_module(name="fake", update=None, **functions):
    """A submission module with AlgoPerf's functions; `update(model, step)` does the step's work."""

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {}

    def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                      batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
        if update is not None:
            update(current_param_container, global_step, workload=workload, eval_results=eval_results)
        return optimizer_state, current_param_container, model_state

    module = types.ModuleType(name)
    module.init_optimizer_state = functions.pop("init_optimizer_state", init_optimizer_state)
    module.update_params = update_params
    for key, fn in functions.items():
        setattr(module, key, fn)
    return module


def run(spec, tmp_path, data_dir, module=None, **kwargs):
    submission = load_submission(module) if module is not None else None
    return run_trial(spec, tmp_path / "results", data_dir=data_dir, device="cpu", submission=submission, **kwargs)


def test_a_step_that_runs_past_the_budget_is_cut(tmp_path, data_dir):
    """The third step would take 60 s of a 0.5 s budget (a zeroth-order method's step on a large model never
    ends within it): the watchdog cuts it GRACE past the budget, the trial ends out of budget at its last
    evaluation with the two steps it finished, says why, and the next trial of the process runs normally."""
    from harness.core import watchdog

    def update(model, step, **_):
        if step == 2:
            deadline = time.monotonic() + 60.0  # without the watchdog the step ends here and the asserts fail
            while time.monotonic() < deadline:  # busy: the cut step's CPU time is most of the trial's
                pass

    budget_multiplier = 0.5 / make_workload("logreg_wine", "tiny").size.max_runtime_s
    spec = TrialSpec("logreg_wine", "fake", preset="tiny", eval_period_s=1e9, eval_period_steps=1,
                     stop_at_target=False, budget_multiplier=budget_multiplier)
    started = time.monotonic()
    record = run(spec, tmp_path, data_dir, algoperf_module(update=update))
    assert time.monotonic() - started < 30.0
    assert record.status == "budget" and record.steps == 2 and record.evals == 2, record
    assert "step 3 was cut" in record.error and "past the budget of 0.5 s" in record.error
    assert record.submission_time_s >= 0.5 * (1 + watchdog.GRACE)
    assert record.cpu_share > 0.1  # the cut step's CPU time counted (without it: the two short steps', ~0.01)
    normal = run(dataclasses.replace(spec, seed=1, max_steps=3), tmp_path, data_dir, algoperf_module())
    assert normal.steps == 3 and normal.error is None


def test_clock_counts_selection_update_and_prepare_but_not_init_or_eval(tmp_path, data_dir, monkeypatch):
    clock = FakeTime()
    original_eval = LogisticRegression.eval_model

    def slow_eval(self, model, model_state):
        clock.advance(100.0)
        return original_eval(self, model, model_state)

    monkeypatch.setattr(LogisticRegression, "eval_model", slow_eval)

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        clock.advance(1000.0)  # initialisation is not counted
        return {}

    def data_selection(workload, input_queue, *args):
        clock.advance(0.5)
        return next(input_queue)

    def prepare_for_eval(workload, params, params_types, model_state, hyperparameters, loss_type,
                         optimizer_state, eval_results, global_step, rng):
        clock.advance(2.0)
        return optimizer_state, params, model_state

    module = algoperf_module(
        update=lambda model, step, **_: clock.advance(10.0 if step == 0 else 1.0),  # step 0 "compiles"
        init_optimizer_state=init_optimizer_state, data_selection=data_selection, prepare_for_eval=prepare_for_eval)
    spec = TrialSpec("logreg_wine", "fake", preset="tiny", max_steps=5, eval_period_s=1e9, eval_period_steps=2,
                     stop_at_target=False, budget_multiplier=100.0)
    record = run(spec, tmp_path, data_dir, module, clock_fn=clock)
    assert record.status == "budget", record.traceback
    evals = results.read_jsonl(spec.trial_dir(tmp_path / "results") / results.EVALS_FILE)
    assert [row["step"] for row in evals] == [1, 3, 5]
    # step 1: 0.5 + 10 (compile) + 2 (prepare); then 2 x (0.5 + 1) + 2 per eval
    assert [row["submission_time_s"] for row in evals] == pytest.approx([12.5, 17.5, 22.5])
    assert record.submission_time_s == pytest.approx(22.5)
    assert record.eval_time_s == pytest.approx(300.0)
    assert record.steps == 5 and record.evals == 3


def test_budget_stops_the_trial(tmp_path, data_dir):
    clock = FakeTime()
    module = algoperf_module(update=lambda model, step, **_: clock.advance(0.6))
    spec = TrialSpec("logreg_wine", "fake", preset="tiny")  # tiny budget: 5 s
    record = run(spec, tmp_path, data_dir, module, clock_fn=clock)
    assert record.status == "budget"
    assert not record.reached_target and record.time_to_target_s is None
    assert record.steps == 9  # 9 x 0.6 = 5.4 >= 5 s; 8 x 0.6 = 4.8 < 5 s
    assert record.submission_time_s == pytest.approx(5.4)


@pytest.mark.parametrize("stop_at_target", [True, False])
def test_target_detection_records_first_eval_that_meets_the_target(tmp_path, data_dir, stop_at_target):
    spec = TrialSpec("logreg_breast_cancer", "adamw", preset="tiny", stop_at_target=stop_at_target, max_steps=400,
                     budget_multiplier=100.0)  # bounded by steps, not by a loaded machine's clock
    record = run(spec, tmp_path, data_dir)
    evals = results.read_jsonl(spec.trial_dir(tmp_path / "results") / results.EVALS_FILE)
    first = next(row for row in evals if row["train_rel_subopt"] <= record.target_value)
    assert record.status == "reached" and record.reached_target
    assert record.steps_to_target == first["step"]
    assert record.time_to_target_s == pytest.approx(first["submission_time_s"])
    assert all(not row["reached_target"] for row in evals if row["step"] < first["step"])
    if stop_at_target:
        assert record.steps == first["step"] and evals[-1] == first
    else:
        assert record.steps == 400 and evals[-1]["step"] == 400


def test_nan_parameters_mark_the_trial_diverged(tmp_path, data_dir):
    def poison(model, step, **_):
        if step == 3:
            with torch.no_grad():
                model.weight.fill_(float("nan"))

    spec = TrialSpec("logreg_wine", "fake", preset="tiny", eval_period_steps=1)
    record = run(spec, tmp_path, data_dir, algoperf_module(update=poison))
    assert record.status == "diverged"
    assert record.steps == 4


def test_nan_training_loss_in_the_short_path_is_caught_at_once(tmp_path, data_dir):
    module = types.ModuleType("exploding")
    module.create_optimizer = lambda params, hp, workload: torch.optim.SGD(params.parameters(), lr=1e38)
    spec = TrialSpec("logreg_illcond", "exploding", preset="tiny", eval_period_steps=10_000, eval_period_s=1e9)
    record = run(spec, tmp_path, data_dir, module)
    assert record.status == "diverged"
    assert "training loss is" in record.error
    assert record.steps < 10


def test_short_path_logs_the_training_loss_every_few_steps(tmp_path, data_dir):
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=40, stop_at_target=False,
                     eval_period_steps=20, eval_period_s=1e9)
    record = run_trial(spec, tmp_path, data_dir=data_dir)
    rows = results.read_jsonl(spec.trial_dir(tmp_path) / results.TRAIN_FILE)
    assert record.steps == 40
    assert [row["step"] for row in rows] == list(range(0, 40, LOSS_EVERY))
    losses = [row["train_loss"] for row in rows]
    assert all(isinstance(loss, float) for loss in losses) and losses[-1] < losses[0]


def test_exception_is_recorded_and_does_not_stop_a_sweep(tmp_path, data_dir):
    def boom(model, step, **_):
        raise RuntimeError("boom at step %d" % step)

    failing = TrialSpec("logreg_wine", "fake", preset="tiny")
    record = run(failing, tmp_path, data_dir, algoperf_module(update=boom))
    assert record.status == "failed"
    assert "boom at step 0" in record.error and "Traceback" in record.traceback
    stored = results.read_result(failing.trial_dir(tmp_path / "results"))
    assert stored.status == "failed"
    records = run_local([TrialSpec("logreg_wine", "does_not_exist", preset="tiny"),
                         TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3)],
                        tmp_path / "results", progress=False, data_dir=data_dir, device="cpu")
    assert [r.status for r in records][0] == "failed"
    assert "unknown submission" in records[0].error
    assert records[1].status in ("reached", "budget")


def test_finished_trials_are_skipped_unless_forced(tmp_path, data_dir):
    calls = []
    module = algoperf_module(update=lambda model, step, **_: calls.append(step))
    spec = TrialSpec("logreg_wine", "fake", preset="tiny", max_steps=3)
    first = run(spec, tmp_path, data_dir, module)
    assert len(calls) == 3 and not first.skipped
    again = run(spec, tmp_path, data_dir, module)
    assert again.skipped and len(calls) == 3
    assert again.trial_key == first.trial_key
    run(spec, tmp_path, data_dir, module, force=True)
    assert len(calls) == 6


def test_failed_trials_are_run_again(tmp_path, data_dir):
    attempts = []

    def flaky(model, step, **_):
        attempts.append(step)
        if len(attempts) == 1:
            raise RuntimeError("transient")

    spec = TrialSpec("logreg_wine", "fake", preset="tiny", max_steps=2)
    assert run(spec, tmp_path, data_dir, algoperf_module(update=flaky)).status == "failed"
    assert run(spec, tmp_path, data_dir, algoperf_module(update=flaky)).status == "budget"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "result.json"
    results.atomic_write_json(path, {"status": "reached", "value": float("inf")})
    assert json.loads(path.read_text()) == {"status": "reached", "value": "inf"}
    with pytest.raises(TypeError):
        results.atomic_write_json(path, {"status": object()})
    assert json.loads(path.read_text())["status"] == "reached"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_submissions_cannot_see_targets_or_validation_data(tmp_path, data_dir):
    def peek(model, step, workload, **_):
        return workload.target_value

    record = run(TrialSpec("logreg_wine", "fake", preset="tiny"), tmp_path, data_dir, algoperf_module(update=peek))
    assert record.status == "failed"
    assert "cannot read workload.target_value" in record.error


def test_eval_results_passed_to_submissions_carry_algoperf_keys(tmp_path, data_dir):
    seen = []
    module = algoperf_module(update=lambda model, step, eval_results, **_: seen.append(list(eval_results)))
    spec = TrialSpec("logreg_wine", "fake", preset="tiny", max_steps=4, eval_period_steps=1)
    record = run(spec, tmp_path, data_dir, module)
    evals = results.read_jsonl(spec.trial_dir(tmp_path / "results") / results.EVALS_FILE)
    assert [step for step, _ in seen[-1]] == [row["step"] for row in evals[:3]]
    for (_, result), row in zip(seen[-1], evals):
        # AlgoPerf's keys: the split, a slash, the metric; validation metrics included, as AlgoPerf hands them
        assert result["validation/accuracy"] == row["validation_accuracy"]
        assert result["train/loss"] == row["train_loss"]
        assert result["accumulated_submission_time"] == result["score"] == row["submission_time_s"]
        assert result["validation/num_examples"] > 0
    assert record.status in results.FINISHED


def test_batch_size_falls_back_and_is_capped(data_dir):
    workload = make_workload("logreg_digits", "cpu", data_dir)

    def by_algoperf_name(name):
        if name != "mnist":
            raise ValueError(f"Unsupported workload name: {name}.")
        return 16

    submission = load_submission(algoperf_module(get_batch_size=by_algoperf_name))
    assert resolve_batch_size(submission, workload) == 16  # logreg_digits declares algoperf_name "mnist"
    other = make_workload("logreg_wine", "cpu", data_dir)
    with pytest.warns(UserWarning, match="using logreg_wine's default batch size 128"):
        assert resolve_batch_size(submission, other) == 128
    big = load_submission(algoperf_module(get_batch_size=lambda name: 4096))
    workload.size = dataclasses.replace(workload.size, max_batch_size=256)
    with pytest.warns(UserWarning, match="at most 256"):
        assert resolve_batch_size(big, workload) == 256


def test_unsupported_workloads_are_recorded_without_training(tmp_path, data_dir):
    folder = tmp_path / "convex_only"
    folder.mkdir()
    (folder / "submission.py").write_text(
        "import torch\n\ndef create_optimizer(params, hp, workload):\n"
        "    return torch.optim.SGD(params.parameters(), lr=0.1)\n")
    (folder / "metadata.json").write_text(json.dumps({
        "method": "x", "paper": {"title": "t", "arxiv": None},
        "unsupported_workloads": {"logreg_w*": "needs something wine lacks"}}))
    record = run_trial(TrialSpec("logreg_wine", str(folder), preset="tiny"), tmp_path / "results", data_dir=data_dir)
    assert record.status == "unsupported" and record.error == "needs something wine lacks"
    assert "steps" not in record.to_json()  # it never trained: no training keys


def test_result_carries_provenance_and_spec(tmp_path, data_dir):
    record = run(TrialSpec("logreg_wine", "adamw", preset="tiny", seed=7, max_steps=2), tmp_path, data_dir)
    prov = record.provenance
    assert prov["seed"] == 7 and prov["torch"] == torch.__version__
    assert len(prov["submission_source_hash"]) == 16 and prov["git_commit"]
    assert prov["hardware"]["cpu"] and prov["hardware"]["fingerprint"]
    assert record.hyperparameters["learning_rate"] == load_submission("adamw").metadata["defaults"]["learning_rate"]
    for key in ("workload", "submission", "framework", "preset", "seed", "status", "reached_target",
                "time_to_target_s", "steps_to_target", "submission_time_s", "eval_time_s", "total_time_s",
                "final_metrics"):
        assert key in record.to_json()
    frame = results.load_results(tmp_path / "results")
    assert list(frame["workload"]) == ["logreg_wine"] and frame["provenance.seed"].iloc[0] == 7


def test_seeds_change_the_data_order_and_same_seed_reproduces(tmp_path, data_dir):
    def final_weights(seed):
        spec = TrialSpec("logreg_digits", "adamw", preset="tiny", seed=seed, max_steps=20, stop_at_target=False,
                         budget_multiplier=100.0)
        record = run(spec, tmp_path, data_dir, force=True)
        return record.final_metrics["train_loss"]

    assert final_weights(1) == final_weights(1)
    assert final_weights(1) != final_weights(2)


def test_a_changed_submission_is_rerun_not_reused(tmp_path, data_dir, capsys):
    """A finished trial is reused only while it still answers its spec: same submission source, same
    hyperparameters after defaults, same clock rules."""
    import shutil

    folder = tmp_path / "my_adamw"
    shutil.copytree(SUBMISSIONS_DIR / "adamw", folder)
    spec = TrialSpec("logreg_wine", str(folder), preset="tiny", max_steps=3)
    first = run_trial(spec, tmp_path / "results", data_dir=data_dir)
    assert run_trial(spec, tmp_path / "results", data_dir=data_dir).skipped
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["defaults"]["weight_decay"] = 0.5  # the example: another default weight decay
    (folder / "metadata.json").write_text(json.dumps(metadata))
    rerun = run_trial(spec, tmp_path / "results", data_dir=data_dir)
    assert not rerun.skipped and rerun.hyperparameters["weight_decay"] == 0.5
    assert "source changed" in capsys.readouterr().err
    assert rerun.provenance["submission_source_hash"] != first.provenance["submission_source_hash"]
    assert run_trial(spec, tmp_path / "results", data_dir=data_dir).skipped
    submission = load_submission(str(folder))
    assert stale_reason(rerun, spec, submission) is None
    assert "resolve differently" in stale_reason(dataclasses.replace(rerun, hyperparameters=first.hyperparameters),
                                                 spec, submission)
    assert "timing version 1" in stale_reason(dataclasses.replace(rerun, timing_version=None), spec, submission)


def test_a_trial_measured_against_another_target_or_workload_is_rerun(tmp_path, data_dir, monkeypatch, capsys):
    """A committed target (calibrate writes one), a new step_hint or a changed workload definition (its
    `version`) makes a finished trial stale; a record from before a field was recorded is not judged on it."""
    from harness.core import registry, targets

    monkeypatch.setenv("TIMETRIAL_TARGETS_DIR", str(tmp_path / "targets"))
    spec = TrialSpec("logreg_wine", "adamw", preset="tiny", max_steps=3)
    first = run_trial(spec, tmp_path / "results", data_dir=data_dir)
    assert first.workload_definition and run_trial(spec, tmp_path / "results", data_dir=data_dir).skipped
    step_hint = registry.workload_class("logreg_wine").sizes["tiny"].step_hint
    targets.write_entry("tiny", "logreg_wine", {"target_value": first.target_value / 2, "step_hint": step_hint})
    retargeted = run_trial(spec, tmp_path / "results", data_dir=data_dir)
    assert not retargeted.skipped and retargeted.target_value == first.target_value / 2
    assert "target_value changed" in capsys.readouterr().err
    submission = load_submission("adamw")
    assert stale_reason(retargeted, spec, submission) is None
    assert "step_hint changed" in stale_reason(dataclasses.replace(retargeted, step_hint=step_hint + 1), spec,
                                               submission)
    monkeypatch.setattr(registry.workload_class("logreg_wine"), "version", "a changed model")
    assert "workload_definition changed" in stale_reason(retargeted, spec, submission)
    old_record = dataclasses.replace(retargeted, workload_definition=None)
    assert stale_reason(old_record, spec, submission) is None


def test_the_source_hash_covers_the_shared_modules_a_submission_imports(tmp_path, monkeypatch):
    """An edit to shared code a submission imports (through another shared module, or from inside a
    function) changes its source hash, so its trials go stale; an edit to a module it does not import, or
    to the engine (harness), does not."""
    project = tmp_path / "project"
    files = {"optimlib/__init__.py": '"""pieces"""\n',
             "optimlib/steps.py": "from optimlib.moments import update\n",
             "optimlib/moments.py": "def update(m):\n    return m\n",
             "optimlib/unused.py": "X = 1\n",
             "harness/core/spec.py": "Y = 1\n",
             "submissions/mine/submission.py": ("from harness.core import spec\n\n"
                                                "def create_optimizer(params, hp, workload):\n"
                                                "    from optimlib import steps\n"),
             "submissions/mine/metadata.json": "{}"}
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    monkeypatch.setattr(submission_module, "PROJECT_ROOT", project)
    folder = project / "submissions" / "mine"
    assert [f.relative_to(project).as_posix() for f in imported_project_files([folder / "submission.py"])] \
        == ["optimlib/moments.py", "optimlib/steps.py"]
    before = submission_module.source_hash(folder)
    for untouched in ("optimlib/unused.py", "harness/core/spec.py", "optimlib/__init__.py"):
        (project / untouched).write_text("Z = 2\n")
        assert submission_module.source_hash(folder) == before, untouched
    (project / "optimlib/moments.py").write_text("def update(m):\n    return 2 * m\n")
    assert submission_module.source_hash(folder) != before


def test_the_baselines_hash_the_optimlib_modules_they_use():
    """The real tree: a submission's hash reaches optimlib modules imported only through other ones."""
    muon = imported_project_files(sorted((SUBMISSIONS_DIR / "muon").glob("*.py")))
    assert {"optimlib/muon.py", "optimlib/newton_schulz.py", "optimlib/schedules.py"} <= \
        {f.relative_to(PROJECT_ROOT).as_posix() for f in muon}
    assert [f.relative_to(PROJECT_ROOT).as_posix() for f in imported_project_files([SUBMISSIONS_DIR / "adamw" / "submission.py"])] \
        == ["optimlib/schedules.py"]


@pytest.mark.parametrize("workload, expected", [
    ("gpt2", {"transformer.wte.weight": "EMBEDDING", "transformer.h.0.ln_1.weight": "LAYER_NORM_SCALE",
              "transformer.h.0.ln_1.bias": "LAYER_NORM_BIAS", "transformer.h.0.attn.c_attn.weight": "ATTENTION_QKV",
              "transformer.h.0.attn.c_proj.weight": "ATTENTION_OUT", "transformer.h.0.attn.c_attn.bias": "ATTENTION_BIAS"}),
    ("resnet", {"conv1.weight": "CONV_WEIGHT", "bn1.weight": "BATCH_NORM_SCALE", "bn1.bias": "BATCH_NORM_BIAS"}),
    ("dlrm_small", {"embedding.weight": "EMBEDDING"}),
])
def test_parameter_types_come_from_module_types(workload, expected, data_dir):
    """What a 'no decay on norms and embeddings' mask reads: LayerNorms are LAYER_NORM_*, not BATCH_NORM_*."""
    instance = make_workload(workload, "tiny", data_dir)
    instance.prepare_data()
    model, _ = instance.init_model_fn(0)
    instance.record_parameter_types(model)
    types = {name: kind.name for name, kind in instance.model_params_types.items()}
    assert set(types) == {name for name, _ in model.named_parameters()}
    assert {name: types[name] for name in expected} == expected
