"""Checkpoint and resume: an interrupted trial resumed from its last checkpoint ends exactly where an
uninterrupted one does, with the lost steps run (and timed) again."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from harness.core import checkpoint, results
from harness.core.runner import TrialSpec, run_trial
from harness.core.submission import load_submission

SPEC = TrialSpec(workload="logreg_breast_cancer", submission="adamw", preset="tiny", seed=3,
                 stop_at_target=False, max_steps=120, eval_period_steps=10, eval_period_s=1e9,
                 budget_multiplier=1e6)


class Preempted(BaseException):
    """Stands in for SIGKILL/requeue: not an Exception, so the runner writes no result."""


class StepClock:
    """Every reading is one tick later: each step costs exactly one second on the trial's clock,
    and the clock can preempt the trial after a number of readings."""

    def __init__(self, preempt_after: int | None = None) -> None:
        self.readings = itertools.count()
        self.preempt_after = preempt_after

    def __call__(self) -> float:
        reading = next(self.readings)
        if self.preempt_after is not None and reading >= self.preempt_after:
            raise Preempted
        return float(reading)


def recording_submission(name: str = "adamw"):
    """A submission whose update_params remembers the model it returns and counts its steps."""
    submission = load_submission(name)
    seen = {"model": None, "steps": 0}

    def update_params(*args, **kwargs):
        optimizer_state, model, model_state = submission.update_params(*args, **kwargs)
        seen["model"], seen["steps"] = model, seen["steps"] + 1
        return optimizer_state, model, model_state

    return dataclasses.replace(submission, update_params=update_params), seen


def final_parameters(seen) -> dict[str, np.ndarray]:
    model = seen["model"]
    if isinstance(model, dict):  # JAX parameters
        return {name: np.array(value) for name, value in model.items()}
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name, framework", [("adamw", "pytorch"), ("adamw_jax", "jax")])
def test_resumed_trial_matches_uninterrupted(name, framework, tmp_path, data_dir):
    spec = dataclasses.replace(SPEC, submission=name, framework=framework)
    submission, seen = recording_submission(name)
    whole = run_trial(spec, tmp_path / "whole", data_dir=data_dir, clock_fn=StepClock(),
                      submission=submission, checkpoint_every_evals=2)
    whole_params = final_parameters(seen)
    assert whole.status == "reached" and whole.steps == 120
    assert whole.time_to_target_s == whole.steps_to_target < 120  # one clock second per step

    submission, seen = recording_submission(name)
    with pytest.raises(Preempted):  # readings: 1 + 1 per step + 3 per eval; this stops at step 61's eval
        run_trial(spec, tmp_path / "resumed", data_dir=data_dir, clock_fn=StepClock(preempt_after=80),
                  submission=submission, checkpoint_every_evals=2)
    trial_dir = spec.trial_dir(tmp_path / "resumed")
    saved = checkpoint.load(trial_dir)
    assert saved["train_state"]["step"] == 51  # evals at steps 1, 11, 21, ...: every 2nd is saved
    assert results.read_result(trial_dir) is None
    steps_before = seen["steps"]
    assert steps_before == 61  # steps 52..61 are lost

    submission, seen = recording_submission(name)
    resumed = run_trial(spec, tmp_path / "resumed", data_dir=data_dir, clock_fn=StepClock(),
                        submission=submission, checkpoint_every_evals=2)
    assert resumed.resumed_from_steps == [51]
    assert seen["steps"] == 120 - 51  # the lost steps ran again
    for key in ("status", "steps", "evals", "time_to_target_s", "steps_to_target", "submission_time_s",
                "eval_time_s", "final_metrics", "best_metric"):
        assert getattr(resumed, key) == getattr(whole, key), key
    for param, value in final_parameters(seen).items():
        np.testing.assert_array_equal(value, whole_params[param])
    for log in (results.EVALS_FILE, results.TRAIN_FILE):  # no rows of the lost steps twice
        assert results.read_jsonl(trial_dir / log) == results.read_jsonl(spec.trial_dir(tmp_path / "whole") / log)
    assert not (trial_dir / checkpoint.CHECKPOINT_FILE).exists()  # deleted with the result


def test_force_ignores_checkpoint(tmp_path, data_dir):
    with pytest.raises(Preempted):
        run_trial(SPEC, tmp_path, data_dir=data_dir, clock_fn=StepClock(preempt_after=70),
                  checkpoint_every_evals=1)
    record = run_trial(SPEC, tmp_path, data_dir=data_dir, clock_fn=StepClock(), force=True)
    assert record.resumed_from_steps == [] and record.steps == 120


def test_state_tree_round_trip_through_nested_optimizer_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)

    def fresh_state():
        optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
        return {"optimizer": optimizer, "schedulers": [torch.optim.lr_scheduler.StepLR(optimizer, 2)],
                "base_lrs": (0.1,), "count": 0}

    state = fresh_state()
    for _ in range(3):
        model(torch.randn(4, 3)).sum().backward()
        state["optimizer"].step()
        state["schedulers"][0].step()
    state["count"] = 3
    saved = checkpoint.state_tree(state)
    restored = checkpoint.load_state_tree(fresh_state(), saved)
    assert restored["count"] == 3 and restored["base_lrs"] == (0.1,)
    assert restored["schedulers"][0].last_epoch == 3
    exp_avg = restored["optimizer"].state_dict()["state"][0]["exp_avg"]
    torch.testing.assert_close(exp_avg, state["optimizer"].state_dict()["state"][0]["exp_avg"])
    with pytest.raises(ValueError, match=r"optimizer_state has keys \['count'\]"):
        checkpoint.load_state_tree({"optimizer": 1}, {"count": 1})


def test_unpicklable_state_is_not_saved_and_rebuilt_on_resume(tmp_path, data_dir):
    """AlgoPerf's Lion submission keeps a namedtuple of a class pickle cannot find in its optimizer state:
    its fields are saved and the fresh state's class rebuilds it. An entry that cannot be pickled at all
    (a function) is left out with a warning, as AlgoPerf does, and the resumed trial keeps the rebuilt one;
    it ends where an uninterrupted trial does."""
    import collections

    submission = load_submission("adamw")
    Local = collections.namedtuple("Local", ["lr"])  # defined in a function: pickle cannot find it

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        state = submission.init_optimizer_state(workload, model_params, model_state, hyperparameters, rng)
        return {**state, "extra": Local(0.1), "hyperparameters": hyperparameters, "hook": lambda x: x}

    def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
                      loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
        assert optimizer_state["extra"].lr == 0.1
        inner = {k: v for k, v in optimizer_state.items() if k not in ("extra", "hyperparameters", "hook")}
        inner, params, model_state = submission.update_params(
            workload, current_param_container, current_params_types, model_state, hyperparameters, batch, loss_type,
            inner, eval_results, global_step, rng)
        return {**optimizer_state, **inner}, params, model_state

    odd = dataclasses.replace(submission, init_optimizer_state=init_optimizer_state, update_params=update_params)
    with pytest.warns(UserWarning, match=r"optimizer_state\['hook'\] \(function\) has no state_dict\(\) and cannot be pickled"):
        with pytest.raises(Preempted):
            run_trial(SPEC, tmp_path / "a", data_dir=data_dir, clock_fn=StepClock(preempt_after=70),
                      checkpoint_every_evals=1, submission=odd)
    resumed = run_trial(SPEC, tmp_path / "a", data_dir=data_dir, clock_fn=StepClock(), submission=odd,
                        checkpoint_every_evals=1)
    whole = run_trial(SPEC, tmp_path / "b", data_dir=data_dir, clock_fn=StepClock(), submission=odd)
    assert resumed.status == whole.status and resumed.resumed_from_steps and resumed.steps == whole.steps
    assert resumed.final_metrics == pytest.approx(whole.final_metrics)
