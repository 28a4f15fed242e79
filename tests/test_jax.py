"""The JAX path (framework=jax): the logistic suite in JAX computes the PyTorch objective, the optax
AdamW submission trains like the PyTorch one, the clock waits for JAX's asynchronous dispatch, and
framework mismatches fail with a clear message."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from harness.commands.cli import main
from harness.core import registry, results
from harness.core.presets import XLA_ONE_THREAD_FLAGS, apply_threads
from harness.core.runner import TrialSpec, run_trial
from harness.core.spec import ForwardPassMode
from jax_parity import workload_pair
from workloads.logreg.jax_workload import JaxLogisticRegression


def make_resnet_pytorch_only(monkeypatch):
    """Every workload has a JAX implementation: resnet, made PyTorch-only, stands in for one without."""
    monkeypatch.setattr(registry.workload_class("resnet"), "frameworks", ("pytorch",))


@pytest.mark.parametrize("name", ["logreg_breast_cancer", "logreg_wine"])
@pytest.mark.parametrize("label_smoothing, masked", [(0.0, False), (0.1, True)])
def test_jax_objective_equals_pytorch(name, label_smoothing, masked, data_dir):
    torch_workload, jax_workload = workload_pair(name, data_dir)
    model, _ = torch_workload.init_model_fn(0)
    rng = np.random.default_rng(0)
    weight = rng.standard_normal(tuple(model.weight.shape)).astype(np.float32)
    bias = rng.standard_normal(tuple(model.bias.shape)).astype(np.float32)
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(weight))
        model.bias.copy_(torch.as_tensor(bias))
    params = {"weight": jnp.asarray(weight), "bias": jnp.asarray(bias)}
    torch_batch = next(torch_workload.train_batches(32, seed=1))
    jax_batch = next(jax_workload.train_batches(32, seed=1))
    np.testing.assert_array_equal(np.asarray(jax_batch["inputs"]), torch_batch["inputs"].numpy())
    mask = (np.arange(32) % 3 != 0).astype(np.float32) if masked else None

    with torch.no_grad():
        logits, _ = torch_workload.model_fn(model, torch_batch, None, ForwardPassMode.TRAIN, None, True)
        want = torch_workload.loss_fn(torch_batch["targets"], logits,
                                      None if mask is None else torch.as_tensor(mask), label_smoothing)
    logits, _ = jax_workload.model_fn(params, jax_batch, None, ForwardPassMode.TRAIN, None, True)
    got = jax_workload.loss_fn(jax_batch["targets"], logits, None if mask is None else jnp.asarray(mask),
                               label_smoothing)
    for key in ("summed", "n_valid_examples"):
        np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-5, err_msg=key)
    assert jax_workload.eval_model(params, None) == pytest.approx(torch_workload.eval_model(model, None), rel=1e-6)


def test_optax_adamw_trains_like_pytorch_adamw(tmp_path, data_dir):
    """Same data, initialisation, schedule and update rule: the eval curves agree to float32 rounding."""
    curves = {}
    for name, framework in (("adamw", "pytorch"), ("adamw_jax", "jax")):
        spec = TrialSpec("logreg_wine", name, preset="tiny", framework=framework, max_steps=300,
                         stop_at_target=False, eval_period_steps=50, eval_period_s=1e9, budget_multiplier=100.0)
        record = run_trial(spec, tmp_path, data_dir=data_dir)
        assert record.status == "reached", record.traceback
        assert record.framework == framework
        curves[framework] = [row["train_loss"] for row in
                             map(json.loads, (spec.trial_dir(tmp_path) / "evals.jsonl").read_text().splitlines())]
    assert len(curves["jax"]) == 7  # steps 1, 50, 100, ..., 300
    np.testing.assert_allclose(curves["jax"], curves["pytorch"], rtol=1e-4)
    assert curves["jax"][-1] < 0.5 * curves["jax"][0]


@pytest.mark.slow
def test_optax_adamw_reaches_the_cpu_target_at_the_pytorch_step(cpu_trial):
    jax_record = cpu_trial("adamw_jax", "logreg_wine", framework="jax")
    torch_record = cpu_trial("adamw", "logreg_wine")
    assert jax_record.status == torch_record.status == "reached", jax_record.traceback
    assert abs(jax_record.steps_to_target - torch_record.steps_to_target) <= 2 * jax_record.spec["eval_period_steps"]


def test_clock_waits_for_the_step_outputs(tmp_path, data_dir, monkeypatch):
    """JAX returns from a jitted call before the work is done; every clock reading after a step
    first blocks on the parameters the step returned."""
    waited = []
    original = JaxLogisticRegression.synchronize

    def recording_synchronize(self, outputs=None):
        waited.append(outputs)
        original(self, outputs)

    monkeypatch.setattr(JaxLogisticRegression, "synchronize", recording_synchronize)
    spec = TrialSpec("logreg_wine", "adamw_jax", preset="tiny", framework="jax", max_steps=5,
                     stop_at_target=False, eval_period_steps=100, eval_period_s=1e9)
    record = run_trial(spec, tmp_path, data_dir=data_dir)
    assert record.steps == 5
    step_outputs = [o for o in waited if isinstance(o, dict) and set(o) == {"weight", "bias"}]
    assert len(step_outputs) == 5
    assert all(isinstance(leaf, jax.Array) for o in step_outputs for leaf in o.values())


def test_framework_mismatches_are_reported(tmp_path, data_dir, monkeypatch):
    wrong_submission = run_trial(TrialSpec("logreg_wine", "adamw", preset="tiny", framework="jax", max_steps=2),
                                 tmp_path, data_dir=data_dir)
    assert wrong_submission.status == "failed"
    assert "written for pytorch, not framework=jax; run it with framework=pytorch" in wrong_submission.error
    make_resnet_pytorch_only(monkeypatch)
    no_jax_workload = run_trial(TrialSpec("resnet", "adamw_jax", preset="tiny", framework="jax", max_steps=2),
                                tmp_path, data_dir=data_dir)
    assert no_jax_workload.status == "unsupported"
    assert "workload 'resnet' has no jax implementation; valid frameworks: ['pytorch']" in no_jax_workload.error


def test_cli_runs_a_jax_trial(tmp_path, capsys, data_dir):
    args = ["run", "workload=logreg_breast_cancer", "submission=adamw_jax", "framework=jax", "preset=tiny",
            f"results_dir={tmp_path}", f"data_dir={data_dir}", "progress=false", "max_steps=30"]
    assert main(args) == 0
    [result] = tmp_path.rglob(results.RESULT_FILE)
    record = results.read_result(result.parent)
    assert record.framework == "jax" and record.steps <= 30
    assert record.provenance["jax"] == jax.__version__


def test_every_family_with_jax_finds_its_implementation_by_module_name(monkeypatch):
    for name, cls in registry.workload_classes().items():
        if "jax" in cls.frameworks:
            jax_class = cls.implementation("jax")
            assert jax_class.framework == "jax" and issubclass(jax_class, cls), name
    make_resnet_pytorch_only(monkeypatch)
    with pytest.raises(ValueError, match="has no jax implementation; valid frameworks: \\['pytorch'\\]"):
        registry.workload_classes()["resnet"].implementation("jax")


def test_one_thread_presets_give_xla_one_thread_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    apply_threads("cpu")
    assert os.environ["XLA_FLAGS"] == XLA_ONE_THREAD_FLAGS
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    apply_threads("tiny")
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
