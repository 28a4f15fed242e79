"""AlgoPerf's JAX submissions run on timetrial (issue #18): the JAX side of the algoperf shim
(`jax_sharding_utils`, `jax_utils`, `random_utils` on JAX keys), workloads that take AlgoPerf's traced
hyperparameters, `submissions/algoperf_nadamw_jax` (written as AlgoPerf's JAX baseline is) on one workload of
every family with a JAX implementation, and AlgoPerf's own JAX baseline file, unchanged, where AlgoPerf's
repository is mirrored (not on CI)."""

import ast
import importlib
import importlib.util
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from harness.core import prng, results  # noqa: E402
from harness.core.registry import make_workload, workload_classes  # noqa: E402
from harness.core.runner import TrialSpec, run_trial  # noqa: E402
from harness.core.spec import ForwardPassMode  # noqa: E402
from harness.core.submission import ALGOPERF_MODULES, load_submission  # noqa: E402
from harness.core.targets import tuned_point  # noqa: E402
from test_algoperf_semantics import ONE_PER_FAMILY  # noqa: E402
from test_jax import workload_pair  # noqa: E402
from test_optax_submissions import parameter_trajectory  # noqa: E402
from workloads.jax_common import dropout  # noqa: E402

SUBMISSION = "algoperf_nadamw_jax"
#: one workload of every family that has a JAX implementation (resnet and vit join when theirs exist)
JAX_FAMILIES = [name for name in ONE_PER_FAMILY if "jax" in workload_classes()[name].frameworks]
#: the deep families' trials compile for tens of seconds on a busy 2-core machine
slow_unless_logreg = [pytest.param(name, marks=() if name.startswith("logreg") else pytest.mark.slow)
                      for name in JAX_FAMILIES]


def algoperf_modules():
    """The shim's JAX modules, importable once a submission has loaded (as for any AlgoPerf submission)."""
    load_submission(SUBMISSION)
    from algoperf import jax_sharding_utils, jax_utils, random_utils  # noqa: PLC0415
    return jax_sharding_utils, jax_utils, random_utils


# ---- the shim -------------------------------------------------------------------------------------------------
def test_shardings_place_on_the_trial_device_and_a_sharded_step_compiles_once():
    """On one device both of AlgoPerf's shardings put the whole array there; a step jitted with them and fed
    its own outputs, as update_params is, traces once (a NamedSharding over a one-device mesh traces twice
    under jax 0.10: its mesh enters the outputs' types)."""
    sharding, _, _ = algoperf_modules()
    device = jax.devices()[0]
    tree = {"w": np.ones((4, 3), np.float32), "b": np.zeros(3, np.float32)}
    for placed in (sharding.replicate(tree), sharding.shard_along_batch_dim(tree)):
        assert all(leaf.devices() == {device} and leaf.is_fully_addressable for leaf in jax.tree.leaves(placed))
    traces = []

    def step(params, batch):
        traces.append(1)
        return jax.tree.map(lambda p: p - 0.1 * batch.mean(), params)

    jitted = jax.jit(step, in_shardings=(sharding.get_replicate_sharding(), sharding.get_batch_dim_sharding()),
                     out_shardings=sharding.get_replicate_sharding(), donate_argnums=(0,))
    params = {key: jnp.asarray(value) for key, value in tree.items()}  # placed as the runner's arrays are
    for _ in range(3):
        params = jitted(params, jnp.ones((8, 2)))
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(params["w"]), 0.7, rtol=1e-6)


def test_random_utils_split_jax_keys_with_jax_random_and_numpy_seeds_as_before():
    _, _, random_utils = algoperf_modules()
    key = prng.TrialSeeds(0, "jax").at_step(3).update_params  # what a JAX trial hands its submission
    np.testing.assert_array_equal(np.asarray(random_utils.split(key, 4)), np.asarray(jax.random.split(key, 4)))
    np.testing.assert_array_equal(np.asarray(random_utils.fold_in(key, 7)), np.asarray(jax.random.fold_in(key, 7)))
    typed = jax.random.key(1)
    assert jax.random.key_data(random_utils.split(typed, 2)).shape == (2, 2)
    seed = prng.TrialSeeds(0).at_step(3).update_params  # a PyTorch trial's int32 pair: AlgoPerf's NumPy scheme
    np.testing.assert_array_equal(random_utils.split(seed, 2), prng.numpy_split(seed, 2))


def test_jax_utils_dropout_keeps_algoperf_fields_and_call():
    _, jax_utils, _ = algoperf_modules()
    x, key = jnp.ones((4000, 8)), jax.random.key(0)
    layer = jax_utils.Dropout(0.25)
    assert layer(x, deterministic=True) is x
    dropped = np.asarray(layer(x, deterministic=False, rng=key))
    assert 0.2 < np.mean(dropped == 0) < 0.3 and set(np.unique(dropped)) == {0.0, np.float32(1 / 0.75)}
    # the rate at call time replaces the field's, and may be traced: one compilation for every rate
    at_rate = jax.jit(lambda x, rate: jax_utils.Dropout(deterministic=False)(x, rate=rate, rng=key))
    np.testing.assert_array_equal(np.asarray(at_rate(x, 0.25)), dropped)
    np.testing.assert_array_equal(np.asarray(at_rate(x, 0.0)), np.asarray(x))
    assert not np.any(np.asarray(at_rate(x, 1.0)))
    rows = np.asarray(jax_utils.Dropout(0.5, broadcast_dims=(1,))(x, deterministic=False, rng=key))
    assert all(len(set(row)) == 1 for row in rows)  # one mask value per row
    with pytest.raises(ValueError, match="give deterministic either as a field or at call time"):
        layer(x)
    with pytest.raises(ValueError, match="pass rng="):
        layer(x, deterministic=False)
    with pytest.raises(AttributeError, match="tabulates a flax module"):
        jax_utils.print_jax_model_summary  # noqa: B018


def test_jax_modules_load_under_both_package_names_and_only_when_imported():
    """The modules a loading submission gets aliased at once import no jax (a PyTorch AlgoPerf submission needs
    neither the jax extra nor jax's import time); the JAX ones load when imported, under either name."""
    sharding, _, _ = algoperf_modules()
    shim = Path(sharding.__file__).parent
    for name in ALGOPERF_MODULES:
        body = ast.parse((shim / f"{name}.py").read_text()).body
        imported = [alias.name for node in body if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module for node in body if isinstance(node, ast.ImportFrom)]
        assert not [module for module in imported if module.split(".")[0] == "jax"], name
    old_name = importlib.import_module("algorithmic_efficiency.jax_sharding_utils")
    assert old_name.get_replicate_sharding() == sharding.get_replicate_sharding()
    assert importlib.import_module("algorithmic_efficiency.jax_utils").Dropout


def test_a_folder_without_metadata_is_jax_when_it_imports_jax_and_not_torch(tmp_path):
    folder = tmp_path / "from_algoperf"
    folder.mkdir()
    (folder / "submission.py").write_text(Path(load_submission(SUBMISSION).module.__file__).read_text())
    assert load_submission(folder).framework == "jax"
    assert load_submission("nadamw_jax").framework == "jax"  # its metadata.json says so; its module imports no jax
    assert load_submission(str(Path(__file__).parent / "fixtures" / "algoperf_style")).framework == "pytorch"


# ---- workloads take AlgoPerf's traced hyperparameters ------------------------------------------------------
def test_dropout_takes_a_traced_rate():
    """A traced rate masks as the same rate given as a number; 0 at run time is the identity, and rate 1 gives
    zeros and a finite gradient (no division by 1 - rate)."""
    x, key = jnp.linspace(1.0, 2.0, 1000), jax.random.key(0)
    traced = jax.jit(lambda x, rate: dropout(x, rate, key))
    np.testing.assert_array_equal(np.asarray(traced(x, 0.3)), np.asarray(dropout(x, 0.3, key)))
    np.testing.assert_array_equal(np.asarray(traced(x, 0.0)), np.asarray(x))
    grad = jax.jit(jax.grad(lambda x, rate: dropout(x, rate, key).sum()))(x, 1.0)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)


DEEP_JAX_FAMILIES = [name for name in JAX_FAMILIES if not name.startswith("logreg")]


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if i == 0 else pytest.mark.slow)
                                  for i, n in enumerate(DEEP_JAX_FAMILIES)])
def test_model_fn_and_loss_fn_take_traced_dropout_rate_and_label_smoothing(name, data_dir):
    """AlgoPerf's baselines hand `dropout_rate` and `label_smoothing` to their jitted step as arguments, so
    the workload sees tracers: the loss at traced values is the loss at the same values given as numbers."""
    workload = make_workload(name, "tiny", data_dir, framework="jax")
    workload.prepare_data()
    params, model_state = workload.init_model_fn(0)
    # resnet and vit start with a zero output layer: uniform logits, which label smoothing leaves as they are
    params = {name: value + 0.05 * jnp.sin(jnp.arange(value.size, dtype=value.dtype)).reshape(value.shape)
              for name, value in params.items()}
    batch = next(workload.train_batches(workload.size.batch_size, seed=0))
    key = prng.TrialSeeds(0, "jax").at_step(0).update_params

    def loss(rate, smoothing):
        logits, _ = workload.model_fn(params, batch, model_state, ForwardPassMode.TRAIN, key, True, rate)
        out = workload.loss_fn(batch["targets"], logits, batch.get("weights"), smoothing)
        return out["summed"] / out["n_valid_examples"]

    # one program: the losses at traced (rate, smoothing) and at the same values as numbers
    both = jax.jit(lambda values: [loss(*traced) for traced in values] + [loss(None, 0.0), loss(0.3, 0.1)])
    zero, on, static_zero, static_on = (float(v) for v in both([(0.0, 0.0), (0.3, 0.1)]))
    assert zero == pytest.approx(static_zero, rel=1e-6) and on == pytest.approx(static_on, rel=1e-6)
    assert on != zero  # dropout and smoothing did act


# ---- submissions/algoperf_nadamw_jax ------------------------------------------------------------------------
def test_algoperf_style_submission_computes_the_nadamw_update(data_dir):
    """Its update is the `nadamw` twins' (PyTorch and nadamw_jax: tests/test_optax_submissions.py), so their
    tuned points apply to it; donated parameters and the sharded jit change nothing."""
    torch_workload, jax_workload = workload_pair("logreg_wine", data_dir)
    point = {"learning_rate": 0.03, "weight_decay": 0.1}
    twin, mine = parameter_trajectory(torch_workload, "nadamw", point), parameter_trajectory(jax_workload, SUBMISSION,
                                                                                            point)
    assert np.abs(mine[-1]["weight"] - mine[0]["weight"]).max() > 0.3  # the steps moved the weights
    for step, (theirs, ours) in enumerate(zip(twin, mine)):
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=2e-6, err_msg=f"{key} after step {step}")


def test_the_tuned_nadamw_points_are_points_of_this_submission():
    submission = load_submission(SUBMISSION)
    names = set(submission.search_space.names)
    for workload in ("gpt2", "resnet", "vit"):
        point = tuned_point(workload, "cpu", "nadamw")
        if point is not None:
            assert set(point) <= names, workload
            assert submission.checked_hyperparameters(point) == point


@pytest.mark.parametrize("name", slow_unless_logreg)
def test_algoperf_style_submission_finishes_on_every_jax_family(name, tmp_path, data_dir):
    """Dropout, label smoothing and clipping on (all traced in the jitted step), checkpointed at every eval:
    the optimizer state must checkpoint without a warning, and the trial must finish."""
    spec = TrialSpec(name, SUBMISSION, preset="tiny", framework="jax", max_steps=6, eval_period_steps=3,
                     eval_period_s=1e9, stop_at_target=False, budget_multiplier=100.0,
                     hyperparameters={"dropout_rate": 0.1, "label_smoothing": 0.1, "grad_clip": 1.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu", checkpoint_every_evals=1)
    assert record.status in ("reached", "budget"), record.traceback
    assert record.framework == "jax" and record.steps == 6
    assert not [str(w.message) for w in caught if "checkpoint" in str(w.message) or "donated" in str(w.message)]
    train = results.read_jsonl(spec.trial_dir(tmp_path) / results.TRAIN_FILE)
    assert len(train) == 6 and all(np.isfinite(row["train_loss"]) and row["grad_norm"] > 0 for row in train)


# ---- AlgoPerf's own JAX baseline, unchanged ---------------------------------------------------------------
ALGOPERF_MIRROR = Path("/work/.mirror/mlcommons+algorithmic-efficiency/repo")
ALGOPERF_COMMIT = "2c90454fc05d5bdf3598b0c7651e611f132a7060"
BASELINE = "algorithms/baselines/external_tuning/jax_nadamw_full_budget.py"
SEARCH_SPACE = "algorithms/baselines/external_tuning/tuning_search_space.json"


@pytest.fixture
def algoperf_baseline(tmp_path, monkeypatch):
    """AlgoPerf's external-tuning JAX NAdamW baseline as a submission folder: its file and search space, as
    they are at ALGOPERF_COMMIT (`from algoperf import jax_sharding_utils, spec` resolves to the shim)."""
    if not ALGOPERF_MIRROR.exists():
        pytest.skip(f"AlgoPerf's repository is not mirrored at {ALGOPERF_MIRROR} (it is not on CI)")
    folder = tmp_path / "jax_nadamw_full_budget"
    folder.mkdir()
    for path, name in ((BASELINE, "submission.py"), (SEARCH_SPACE, "tuning_search_space.json")):
        shown = subprocess.run(["git", "-C", str(ALGOPERF_MIRROR), "show", f"{ALGOPERF_COMMIT}:{path}"],
                               check=True, capture_output=True, text=True)
        (folder / name).write_text(shown.stdout)
    if importlib.util.find_spec("chex") is None:  # the file uses it for one annotation, chex.Array
        monkeypatch.setitem(sys.modules, "chex", types.SimpleNamespace(Array=jax.Array))
    return folder


@pytest.mark.parametrize("name", slow_unless_logreg)
def test_algoperf_jax_baseline_runs_unchanged(name, algoperf_baseline, tmp_path, data_dir):
    submission = load_submission(algoperf_baseline)
    assert submission.framework == "jax"  # no metadata.json: it imports jax and not torch
    spec = TrialSpec(name, str(algoperf_baseline), preset="tiny", framework="jax", max_steps=6, eval_period_steps=3,
                     eval_period_s=1e9, stop_at_target=False, budget_multiplier=100.0,
                     hyperparameters={"dropout_rate": 0.1})  # with the first point's label smoothing 0.1
    with pytest.warns(UserWarning, match="get_batch_size|asks for batch size"):  # AlgoPerf's names and sizes
        record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu", submission=submission)
    assert record.status in ("reached", "budget"), record.traceback
    assert record.steps == 6 and record.hyperparameters["label_smoothing"] == 0.1
