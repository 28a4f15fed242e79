"""DLRM-small and GPT in JAX (framework=jax) against their PyTorch twins, at the `tiny` preset: the
converted initialisation is the PyTorch one, the loss of one batch and the evaluation metrics agree to
float32 rounding, a few AdamW steps (PyTorch `adamw` vs optax `adamw_jax`) stay together, dropout has
F.dropout's semantics, and a JAX trial runs end to end on each family.

Tolerances (float32; XLA and PyTorch sum in different orders): loss and eval metrics rtol 1e-5
(measured <= 3e-7 relative); parameters after 5 AdamW steps at lr 1e-3 atol 2e-5 (measured <= 1.5e-6:
the largest gaps are where the true gradient is zero, e.g. attention key biases, to which softmax is
invariant, so Adam's normalisation scales float32 noise up to a fraction of the learning rate).
"""

import functools

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from harness.core import registry, results  # noqa: E402
from harness.core.prng import TrialSeeds  # noqa: E402
from harness.core.runner import SubmissionWorkloadView, TrialSpec, run_trial  # noqa: E402
from harness.core.spec import ForwardPassMode, Hyperparameters, MetricsLogger, module_parameter_types  # noqa: E402
from harness.core.submission import load_submission  # noqa: E402
from workloads.jax_common import dropout, torch_to_jax_params  # noqa: E402

WORKLOADS = ["dlrm_small", "dlrm_small_embed_init", "gpt2", "gpt2_post_ln"]
LOSS_RTOL = 1e-5
ADAMW_STEPS, ADAMW_LR, PARAM_ATOL = 5, 1e-3, 2e-5


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory):
    # one generated DLRM log and Shakespeare split for the whole module (the generation takes seconds)
    return str(tmp_path_factory.getbasetemp() / "data")


@pytest.fixture(scope="module")
def prepared(module_data_dir):
    cache = {}

    def pair(name):
        if name not in cache:
            cache[name] = [registry.make_workload(name, "tiny", module_data_dir, framework=framework)
                           for framework in ("pytorch", "jax")]
            for workload in cache[name]:
                workload.prepare_data()
        return cache[name]

    return pair


def numpy_params(model) -> dict[str, np.ndarray]:
    items = model.named_parameters() if isinstance(model, torch.nn.Module) else model.items()
    return {name: np.asarray(value.detach().numpy() if isinstance(value, torch.Tensor) else value)
            for name, value in items}


@functools.lru_cache(maxsize=None)
def jitted_logits(workload, mode: ForwardPassMode, dropout_rate: float | None):
    # compiling the JAX forward pass is quicker than its first eager call (about 0.7 s against 2 s for GPT)
    return jax.jit(lambda params, batch, rng: workload.model_fn(params, batch, None, mode, rng, False, dropout_rate)[0])


def forward(workload, params, batch, mode=ForwardPassMode.TRAIN, rng=None, dropout_rate=None):
    if workload.framework == "jax":
        return jitted_logits(workload, mode, dropout_rate)(params, batch, rng)
    with torch.no_grad():
        return workload.model_fn(params, batch, None, mode, rng, False, dropout_rate)[0]


def mean_loss(workload, params, batch) -> float:
    out = workload.loss_fn(batch["targets"], forward(workload, params, batch))
    return float(out["summed"]) / float(out["n_valid_examples"])


@pytest.mark.parametrize("name", WORKLOADS)
def test_registry_lists_jax_and_builds_it(name):
    cls = registry.workload_class(name)
    assert cls.frameworks == ("pytorch", "jax")
    jax_cls = cls.implementation("jax")
    assert jax_cls.framework == "jax" and issubclass(jax_cls, cls)
    assert cls.implementation("pytorch") is cls


def test_weight_conversion_keeps_names_layouts_and_tied_weights():
    from workloads.gpt.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=4))
    params = torch_to_jax_params(model)
    # the tied output layer is the token embedding, listed once as named_parameters does
    assert "lm_head.weight" not in params and model.lm_head.weight is model.transformer.wte.weight
    assert set(params) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(np.asarray(params[name]), p.detach().numpy(), err_msg=name)
    assert params["transformer.h.0.attn.c_attn.weight"].shape == (12, 4)  # PyTorch's (out, in)


@pytest.mark.parametrize("name", WORKLOADS)
def test_jax_starts_from_the_pytorch_initialisation(name, prepared):
    torch_workload, jax_workload = prepared(name)
    model, _ = torch_workload.init_model_fn(3)
    params, model_state = jax_workload.init_model_fn(3)
    assert model_state is None
    want = numpy_params(model)
    assert set(params) == set(want)
    for key, value in numpy_params(params).items():
        np.testing.assert_array_equal(value, want[key], err_msg=key)
    assert jax_workload.param_shapes == torch_workload.param_shapes
    assert jax_workload.model_params_types == module_parameter_types(model)
    embedding = "embedding.weight" if name.startswith("dlrm") else "transformer.wte.weight"
    other_seed, _ = jax_workload.init_model_fn(4)  # the seed reaches the converted initialisation
    assert not np.array_equal(np.asarray(other_seed[embedding]), np.asarray(params[embedding]))
    # checkpointing: the saved state loads back into the same parameters
    restored = jax_workload.load_params_state(params, jax_workload.params_state(params))
    assert all(np.array_equal(restored[k], params[k]) for k in params)


@pytest.mark.parametrize("name", WORKLOADS)
def test_same_batch_same_loss_and_same_eval(name, prepared):
    torch_workload, jax_workload = prepared(name)
    model, _ = torch_workload.init_model_fn(0)
    params, _ = jax_workload.init_model_fn(0)
    batch_size = torch_workload.size.batch_size
    torch_batch = next(torch_workload.train_batches(batch_size, seed=1, start_step=7))
    jax_batch = next(jax_workload.train_batches(batch_size, seed=1, start_step=7))
    for key in torch_batch:  # the PyTorch stream's batch, converted
        np.testing.assert_array_equal(np.asarray(jax_batch[key]), torch_batch[key].numpy(), err_msg=key)
    assert mean_loss(jax_workload, params, jax_batch) == pytest.approx(
        mean_loss(torch_workload, model, torch_batch), rel=LOSS_RTOL)

    # label smoothing and a mask take the PyTorch formulas too
    mask = (np.arange(torch_batch["targets"].numel()) % 3 != 0).astype(np.float32).reshape(torch_batch["targets"].shape)
    torch_logits = forward(torch_workload, model, torch_batch, ForwardPassMode.EVAL)
    want = torch_workload.loss_fn(torch_batch["targets"], torch_logits, torch.as_tensor(mask), 0.1)
    jax_logits = forward(jax_workload, params, jax_batch, ForwardPassMode.EVAL)
    got = jax_workload.loss_fn(jax_batch["targets"], jax_logits, jnp.asarray(mask), 0.1)
    for key in ("summed", "n_valid_examples"):
        np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=LOSS_RTOL, err_msg=key)

    torch_metrics, jax_metrics = torch_workload.eval_model(model, None), jax_workload.eval_model(params, None)
    assert set(jax_metrics) == set(torch_metrics) and torch_workload.target_metric in jax_metrics
    assert jax_metrics == pytest.approx(torch_metrics, rel=LOSS_RTOL)


def test_dropout_has_torch_semantics():
    x = jnp.ones((200_000,))
    dropped = np.asarray(dropout(x, 0.3, jax.random.key(0)))
    assert abs(np.mean(dropped == 0) - 0.3) < 0.005  # 5 standard deviations of the zero fraction
    np.testing.assert_allclose(dropped[dropped != 0], 1 / 0.7, rtol=1e-6)  # survivors scaled by 1/(1-p)
    assert not np.any(np.asarray(dropout(x, 1.0, jax.random.key(0))))


@pytest.mark.parametrize("name", ["dlrm_small", "gpt2"])
def test_model_fn_dropout_uses_rng_in_train_mode_only(name, prepared):
    _, jax_workload = prepared(name)
    params, _ = jax_workload.init_model_fn(0)
    batch = next(jax_workload.train_batches(jax_workload.size.batch_size, seed=0))
    # the key the runner hands a JAX submission: a raw uint32[2] threefry key
    key, other_key = TrialSeeds(0, "jax").at_step(0).update_params, TrialSeeds(0, "jax").at_step(1).update_params

    def logits(mode, rng, rate):
        return np.asarray(forward(jax_workload, params, batch, mode, rng, rate))

    plain = logits(ForwardPassMode.TRAIN, None, None)
    dropped = logits(ForwardPassMode.TRAIN, key, 0.5)
    assert not np.allclose(dropped, plain)
    np.testing.assert_array_equal(logits(ForwardPassMode.TRAIN, key, 0.5), dropped)  # a function of the key
    assert not np.allclose(logits(ForwardPassMode.TRAIN, other_key, 0.5), dropped)
    np.testing.assert_array_equal(logits(ForwardPassMode.EVAL, key, 0.5), plain)  # eval: no dropout
    with pytest.raises(ValueError, match="needs rng"):
        logits(ForwardPassMode.TRAIN, None, 0.5)


def adamw_trajectory(workload, submission_name: str, steps: int):
    """`steps` updates of the submission from the seed-0 initialisation on the seed-0 batch stream;
    returns (parameters as numpy, the mean loss of the next batch, validation loss)."""
    submission = load_submission(submission_name)
    hyperparameters = Hyperparameters({**submission.default_hyperparameters(), "learning_rate": ADAMW_LR})
    model, model_state = workload.init_model_fn(0)
    workload.metrics_logger = MetricsLogger()
    view, seeds = SubmissionWorkloadView(workload), TrialSeeds(0, workload.framework)
    optimizer_state = submission.init_optimizer_state(view, model, model_state, hyperparameters, seeds.optimizer_init)
    batches = workload.train_batches(workload.size.batch_size, seed=0)
    for step in range(steps):
        optimizer_state, model, model_state = submission.update_params(
            view, model, workload.model_params_types, model_state, hyperparameters, next(batches),
            workload.loss_type, optimizer_state, [], step, seeds.at_step(step).update_params)
    return numpy_params(model), mean_loss(workload, model, next(batches)), workload.eval_model(model, model_state)


# dlrm_small_embed_init runs dlrm_small's code from another initialisation (checked above): left out here
@pytest.mark.parametrize("name", ["dlrm_small", "gpt2", "gpt2_post_ln"])
def test_adamw_steps_agree_across_frameworks(name, prepared):
    torch_workload, jax_workload = prepared(name)
    torch_params, torch_loss, torch_metrics = adamw_trajectory(torch_workload, "adamw", ADAMW_STEPS)
    jax_params, jax_loss, jax_metrics = adamw_trajectory(jax_workload, "adamw_jax", ADAMW_STEPS)
    initial, _ = jax_workload.init_model_fn(0)
    moved = max(float(np.abs(jax_params[k] - np.asarray(initial[k])).max()) for k in initial)
    assert moved > 100 * PARAM_ATOL  # the steps moved the weights far beyond the tolerance
    for key, value in jax_params.items():
        np.testing.assert_allclose(value, torch_params[key], rtol=0, atol=PARAM_ATOL, err_msg=key)
    assert jax_loss == pytest.approx(torch_loss, rel=LOSS_RTOL)
    assert jax_metrics["validation_loss"] == pytest.approx(torch_metrics["validation_loss"], rel=LOSS_RTOL)


@pytest.mark.parametrize("name", ["dlrm_small", "gpt2"])
def test_adamw_jax_trial_runs_on_the_family(name, tmp_path, module_data_dir):
    spec = TrialSpec(name, "adamw_jax", preset="tiny", framework="jax", max_steps=20, eval_period_steps=10,
                     eval_period_s=1e9, stop_at_target=False)
    record = run_trial(spec, tmp_path, data_dir=module_data_dir)
    assert record.status in ("reached", "budget"), record.traceback
    assert record.framework == "jax" and record.steps == 20
    evals = results.read_jsonl(spec.trial_dir(tmp_path) / results.EVALS_FILE)
    assert [row["step"] for row in evals][-1] == 20
    assert evals[-1]["validation_loss"] < evals[0]["validation_loss"]  # it trained
