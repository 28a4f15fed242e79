"""Shared pieces of the JAX-vs-PyTorch parity tests (test_jax.py, test_jax_dlrm_gpt.py,
test_jax_images.py): a workload in both frameworks, parameters and model state as NumPy, one forward
pass or mean loss in either framework, a few steps of a submission from the seed-0 initialisation, and
the checks every JAX family passes (same initialisation, same loss and metrics, dropout's rng use).

A PyTorch model keeps its BatchNorm running statistics in buffers (its `model_state` is None); a JAX
model carries them in `model_state`: `numpy_model_state` reads either as {buffer name: array}.
Tolerances are float32's: XLA and PyTorch sum in different orders."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from harness.core import registry, results
from harness.core.prng import TrialSeeds
from harness.core.runner import SubmissionWorkloadView, TrialSpec, run_trial
from harness.core.spec import ForwardPassMode, Hyperparameters, MetricsLogger, Workload, module_parameter_types
from harness.core.submission import load_submission

LOSS_RTOL = 1e-5  # losses and eval metrics (measured at most 3e-7 relative)


def workload_pair(name: str, data_dir: str, preset: str = "tiny") -> list[Workload]:
    """[PyTorch workload, JAX workload] at `preset`, data prepared."""
    pair = [registry.make_workload(name, preset, data_dir, framework=framework) for framework in ("pytorch", "jax")]
    for workload in pair:
        workload.prepare_data()
    return pair


def numpy_params(model) -> dict[str, np.ndarray]:
    items = model.named_parameters() if isinstance(model, torch.nn.Module) else model.items()
    return {name: np.asarray(value.detach().numpy() if isinstance(value, torch.Tensor) else value)
            for name, value in items}


def numpy_model_state(model, model_state) -> dict[str, np.ndarray]:
    """A PyTorch module's BatchNorm running means and variances by buffer name, or a JAX `model_state`
    dict; {} for a model without them."""
    if isinstance(model, torch.nn.Module):
        return {f"{name}.{statistic}": getattr(module, statistic).numpy().copy()
                for name, module in model.named_modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
                for statistic in ("running_mean", "running_var")}
    return {name: np.asarray(value) for name, value in (model_state or {}).items()}


@functools.lru_cache(maxsize=None)
def jitted_model_fn(workload, mode: ForwardPassMode, update_batch_norm: bool, dropout_rate: float | None):
    # compiling the JAX forward pass is quicker than its first eager call (about 0.7 s against 2 s for GPT)
    return jax.jit(lambda params, batch, model_state, rng: workload.model_fn(
        params, batch, model_state, mode, rng, update_batch_norm, dropout_rate))


def forward(workload, params, batch, mode=ForwardPassMode.TRAIN, rng=None, dropout_rate=None, model_state=None,
            update_batch_norm=False) -> tuple[Any, Any]:
    """(logits, model_state) of one `model_fn` call, without gradients; a PyTorch module with
    `update_batch_norm` in TRAIN mode updates its running statistics in place."""
    if workload.framework == "jax":
        return jitted_model_fn(workload, mode, update_batch_norm, dropout_rate)(params, batch, model_state, rng)
    with torch.no_grad():
        return workload.model_fn(params, batch, model_state, mode, rng, update_batch_norm, dropout_rate)


def mean_loss(workload, params, batch, model_state=None) -> float:
    out = workload.loss_fn(batch["targets"], forward(workload, params, batch, model_state=model_state)[0])
    return float(out["summed"]) / float(out["n_valid_examples"])


def submission_trajectory(workload, submission_name: str, steps: int, learning_rate: float):
    """`steps` updates of the submission at `learning_rate` (its other defaults) from the seed-0
    initialisation on the seed-0 batch stream; returns (parameters as numpy, model state as numpy,
    the mean loss of the next batch, the eval metrics)."""
    submission = load_submission(submission_name)
    hyperparameters = Hyperparameters({**submission.default_hyperparameters(), "learning_rate": learning_rate})
    model, model_state = workload.init_model_fn(0)
    workload.metrics_logger = MetricsLogger()
    view, seeds = SubmissionWorkloadView(workload), TrialSeeds(0, workload.framework)
    optimizer_state = submission.init_optimizer_state(view, model, model_state, hyperparameters, seeds.optimizer_init)
    batches = workload.train_batches(workload.size.batch_size, seed=0)
    for step in range(steps):
        optimizer_state, model, model_state = submission.update_params(
            view, model, workload.model_params_types, model_state, hyperparameters, next(batches),
            workload.loss_type, optimizer_state, [], step, seeds.at_step(step).update_params)
    return (numpy_params(model), numpy_model_state(model, model_state),
            mean_loss(workload, model, next(batches), model_state), workload.eval_model(model, model_state))


def assert_same_arrays(got: dict[str, np.ndarray], want: dict[str, np.ndarray], atol: float = 0.0) -> None:
    """The same keys, and each array equal (atol 0) or within `atol`."""
    assert set(got) == set(want)
    for key, value in got.items():
        np.testing.assert_allclose(value, want[key], rtol=0, atol=atol, err_msg=key)


def assert_same_initialisation(torch_workload, jax_workload, seed: int):
    """The JAX parameters and model state of `seed` are the PyTorch model's, converted, with the same
    shapes and parameter types, and they survive a checkpoint; returns (model, params, model_state)."""
    model, _ = torch_workload.init_model_fn(seed)
    params, model_state = jax_workload.init_model_fn(seed)
    assert_same_arrays(numpy_params(params), numpy_params(model))
    assert_same_arrays(numpy_model_state(params, model_state), numpy_model_state(model, None))
    assert jax_workload.param_shapes == torch_workload.param_shapes
    assert jax_workload.model_params_types == module_parameter_types(model)
    restored = jax_workload.load_params_state(params, jax_workload.params_state(params))
    assert_same_arrays(numpy_params(restored), numpy_params(params))
    return model, params, model_state


def assert_same_loss_and_eval(torch_workload, jax_workload, model, params, model_state=None) -> None:
    """The PyTorch stream's batch reaches JAX unchanged; its training-mode loss, its masked and
    label-smoothed eval-mode loss and every eval metric agree within LOSS_RTOL."""
    batch_size = torch_workload.size.batch_size
    torch_batch = next(torch_workload.train_batches(batch_size, seed=1, start_step=7))
    jax_batch = next(jax_workload.train_batches(batch_size, seed=1, start_step=7))
    assert_same_arrays({key: np.asarray(value) for key, value in jax_batch.items()},
                       {key: value.numpy() for key, value in torch_batch.items()})
    assert mean_loss(jax_workload, params, jax_batch, model_state) == pytest.approx(
        mean_loss(torch_workload, model, torch_batch), rel=LOSS_RTOL)

    # label smoothing and a mask take the PyTorch formulas too
    mask = (np.arange(torch_batch["targets"].numel()) % 3 != 0).astype(np.float32).reshape(torch_batch["targets"].shape)
    torch_logits, _ = forward(torch_workload, model, torch_batch, ForwardPassMode.EVAL)
    want = torch_workload.loss_fn(torch_batch["targets"], torch_logits, torch.as_tensor(mask), 0.1)
    jax_logits, _ = forward(jax_workload, params, jax_batch, ForwardPassMode.EVAL, model_state=model_state)
    got = jax_workload.loss_fn(jax_batch["targets"], jax_logits, jnp.asarray(mask), 0.1)
    for key in ("summed", "n_valid_examples"):
        np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=LOSS_RTOL, err_msg=key)

    torch_metrics, jax_metrics = torch_workload.eval_model(model, None), jax_workload.eval_model(params, model_state)
    assert set(jax_metrics) == set(torch_metrics) and torch_workload.target_metric in jax_metrics
    assert jax_metrics == pytest.approx(torch_metrics, rel=LOSS_RTOL)


def assert_dropout_uses_rng_in_train_mode_only(jax_workload, params) -> None:
    """With a rate, TRAIN-mode dropout is a function of the key; EVAL mode and rate 0 leave the logits
    exactly as without dropout; a rate without a key is refused."""
    batch = next(jax_workload.train_batches(jax_workload.size.batch_size, seed=0))
    # the key the runner hands a JAX submission: a raw uint32[2] threefry key
    key, other_key = TrialSeeds(0, "jax").at_step(0).update_params, TrialSeeds(0, "jax").at_step(1).update_params

    def logits(mode, rng, rate):
        return np.asarray(forward(jax_workload, params, batch, mode, rng, rate)[0])

    plain = logits(ForwardPassMode.EVAL, key, 0.5)  # eval: no dropout (nothing else depends on the mode here)
    np.testing.assert_array_equal(logits(ForwardPassMode.TRAIN, key, 0.0), plain)  # rate 0: a no-op
    dropped = logits(ForwardPassMode.TRAIN, key, 0.5)
    assert not np.allclose(dropped, plain)
    np.testing.assert_array_equal(logits(ForwardPassMode.TRAIN, key, 0.5), dropped)  # a function of the key
    assert not np.allclose(logits(ForwardPassMode.TRAIN, other_key, 0.5), dropped)
    with pytest.raises(ValueError, match="needs rng"):
        logits(ForwardPassMode.TRAIN, None, 0.5)


def assert_submissions_agree(torch_workload, jax_workload, torch_submission: str, jax_submission: str, steps: int,
                             learning_rate: float, param_atol: float) -> None:
    """Twin submissions' trajectories from the same initialisation and batches: every parameter and
    model-state array within `param_atol` after `steps` steps that moved the weights far beyond it;
    the next batch's loss and the validation loss within LOSS_RTOL."""
    torch_params, torch_state, torch_loss, torch_metrics = submission_trajectory(
        torch_workload, torch_submission, steps, learning_rate)
    jax_params, jax_state, jax_loss, jax_metrics = submission_trajectory(jax_workload, jax_submission, steps,
                                                                         learning_rate)
    initial = numpy_params(jax_workload.init_model_fn(0)[0])
    moved = max(float(np.abs(jax_params[k] - initial[k]).max()) for k in initial)
    assert moved > 100 * param_atol
    assert_same_arrays(jax_params, torch_params, atol=param_atol)
    assert_same_arrays(jax_state, torch_state, atol=param_atol)
    assert jax_loss == pytest.approx(torch_loss, rel=LOSS_RTOL)
    assert jax_metrics["validation_loss"] == pytest.approx(torch_metrics["validation_loss"], rel=LOSS_RTOL)


def assert_jax_trial_trains(name: str, submission: str, results_dir, data_dir: str, steps: int = 20) -> None:
    """A `tiny` trial of a JAX submission, `steps` steps with step-based evaluations, finishes (budget or
    target), and its validation loss fell. The clock budget is widened twentyfold: the first step's
    compilation alone can take most of `tiny`'s 10 s on a busy machine."""
    spec = TrialSpec(name, submission, preset="tiny", framework="jax", max_steps=steps, eval_period_steps=steps // 2,
                     eval_period_s=1e9, stop_at_target=False, budget_multiplier=20.0)
    record = run_trial(spec, results_dir, data_dir=data_dir)
    assert record.status in ("reached", "budget"), record.traceback
    assert record.framework == "jax" and record.steps == steps
    evals = results.read_jsonl(spec.trial_dir(results_dir) / results.EVALS_FILE)
    assert [row["step"] for row in evals][-1] == steps
    assert evals[-1]["validation_loss"] < evals[0]["validation_loss"]  # it trained
