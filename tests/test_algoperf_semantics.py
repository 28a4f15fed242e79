"""What an AlgoPerf submission observes matches AlgoPerf (issue #16): run on one workload of every family
at `tiny` by tests/fixtures/algoperf_semantics, plus the pieces one by one."""

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.core import prng
from harness.core.registry import make_workload
from harness.core.runner import TrialSpec, run_trial
from harness.core.spec import ForwardPassMode, ShapeTuple
from harness.core.submission import load_submission

FIXTURE = str(Path(__file__).parent / "fixtures" / "algoperf_semantics")
ONE_PER_FAMILY = ["logreg_wine", "resnet", "vit", "gpt2", "dlrm_small"]
TRAIN_STATE_KEYS = {"validation_goal_reached", "test_goal_reached", "is_time_remaining", "last_eval_time",
                    "training_complete", "accumulated_submission_time", "accumulated_eval_time",
                    "accumulated_logging_time", "last_step_end_time"}


@pytest.mark.parametrize("workload_name", ONE_PER_FAMILY)
def test_algoperf_style_self_tuning_submission_sees_what_algoperf_hands_it(workload_name, tmp_path, data_dir):
    submission = load_submission(FIXTURE)
    spec = TrialSpec(workload_name, FIXTURE, preset="tiny", max_steps=6, eval_period_steps=2,
                     stop_at_target=False, budget_multiplier=100.0)
    with pytest.warns(UserWarning, match="default batch size"):
        record = run_trial(spec, tmp_path, data_dir=data_dir, device="cpu", submission=submission)
    assert record.status in ("reached", "budget"), record.traceback
    seen = submission.module.SEEN
    assert seen["hyperparameters"] is None  # self-tuning: AlgoPerf passes None, not an empty mapping
    assert seen["device"] == torch.device("cpu")
    workload = make_workload(workload_name, "tiny", data_dir)
    workload.prepare_data()
    model, _ = workload.init_model_fn(0)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert seen["shapes"] == shapes  # ShapeTuple values, read through .shape_tuple
    attributes = seen["attributes"]
    assert attributes["target_metric_name"] == workload.target_metric.split("_", 1)[1]
    assert attributes["num_train_examples"] >= attributes["num_eval_train_examples"] > 0
    assert attributes["num_validation_examples"] > 0 and attributes["eval_batch_size"] > 0
    assert 0 < len(seen["output_params"]) < len(shapes) or workload_name == "logreg_wine"
    # eval results: AlgoPerf's keys, the target metric among them (validation/..., or train/... for logreg)
    steps = [step for step, _ in seen["eval_results"]]
    assert steps == [1, 3, 5]  # the first step, then every eval_period_steps since the last eval
    split = workload.target_metric.split("_", 1)[0]
    assert all(f"{split}/{attributes['target_metric_name']}" in result for _, result in seen["eval_results"])
    # train_state: AlgoPerf's keys; the clock only grows
    assert all(set(state) == TRAIN_STATE_KEYS for state in seen["train_state"])
    clock = [state["accumulated_submission_time"] for state in seen["train_state"]]
    assert clock == sorted(clock) and all(state["is_time_remaining"] for state in seen["train_state"])
    # rng: a fresh int32 pair every step, the same for the same (seed, step)
    rngs = [tuple(rng.tolist()) for _, rng in seen["rng"]]
    assert len(set(rngs)) == len(rngs) == 6
    assert all(rng.dtype == np.int32 and rng.shape == (2,) for _, rng in seen["rng"])
    assert rngs[3] == tuple(prng.TrialSeeds(0).at_step(3).update_params.tolist())


def test_weight_decay_masks_from_parameter_types_spare_norms_embeddings_and_biases(tmp_path, data_dir):
    submission = load_submission(FIXTURE)
    spec = TrialSpec("gpt2", FIXTURE, preset="tiny", max_steps=1, stop_at_target=False, budget_multiplier=100.0)
    with pytest.warns(UserWarning):
        run_trial(spec, tmp_path, data_dir=data_dir, device="cpu", submission=submission)
    no_decay = submission.module.SEEN["no_decay"]
    assert "transformer.wte.weight" in no_decay and "transformer.wpe.weight" in no_decay
    assert "transformer.ln_f.weight" in no_decay and "transformer.h.0.ln_1.bias" in no_decay
    assert "transformer.h.0.attn.c_attn.weight" not in no_decay and "transformer.h.0.mlp.c_fc.weight" not in no_decay
    assert submission.module.SEEN["output_params"] == ["transformer.wte.weight"]  # tied to the LM head


@pytest.mark.parametrize("workload_name", ["vit", "gpt2", "dlrm_small"])
def test_dropout_rate_is_applied_in_training_and_zero_is_a_no_op(workload_name, data_dir):
    workload = make_workload(workload_name, "tiny", data_dir)
    workload.prepare_data()
    model, state = workload.init_model_fn(0)
    for param in model.parameters():  # ViT's zero-initialised head would hide what dropout does below it
        torch.nn.init.normal_(param, std=0.1) if param.dim() > 1 else None
    batch = next(workload.train_batches(8, 0))

    def logits(mode, **kwargs):
        return workload.model_fn(model, batch, state, mode, None, True, **kwargs)[0]

    torch.manual_seed(1)
    plain = logits(ForwardPassMode.TRAIN)
    after_plain = torch.rand(1)
    torch.manual_seed(1)
    zero = logits(ForwardPassMode.TRAIN, dropout_rate=0.0)
    assert torch.equal(plain, zero) and torch.equal(after_plain, torch.rand(1))  # no values, no RNG drawn
    assert not torch.equal(plain, logits(ForwardPassMode.TRAIN, dropout_rate=0.3))
    assert torch.equal(logits(ForwardPassMode.EVAL), logits(ForwardPassMode.EVAL, dropout_rate=0.3))


def test_trial_seeds_depend_on_seed_and_step_only_in_each_frameworks_form():
    first, again, other = prng.TrialSeeds(7), prng.TrialSeeds(7), prng.TrialSeeds(8)
    assert np.array_equal(first.at_step(5).update_params, again.at_step(5).update_params)
    assert not np.array_equal(first.at_step(5).update_params, first.at_step(6).update_params)
    assert not np.array_equal(first.at_step(5).update_params, other.at_step(5).update_params)
    step = first.at_step(5)
    assert len({tuple(s.tolist()) for s in (step.data_selection, step.update_params, step.prepare_for_eval)}) == 3
    assert all(0 <= value < prng.MAX_INT32 for value in step.update_params.tolist())
    jax_random = pytest.importorskip("jax.random")
    key = prng.TrialSeeds(7, "jax").at_step(5).update_params
    assert key.dtype == np.uint32 and key.shape == (2,)
    assert jax_random.split(key, 2).shape == (2, 2)  # a raw threefry key jax.random takes


def test_random_utils_shim_follows_algoperfs_numpy_scheme():
    from algoperf import random_utils  # the shim (harness/core/compat), imported as submissions import it

    key = random_utils.PRNGKey(42)
    assert key.dtype == np.int32 and np.array_equal(key, random_utils.split(42, 2)[0])
    folded = random_utils.fold_in(key, 3)
    assert folded[1] == 3 and isinstance(folded[0], np.int32)
    assert random_utils.split(folded, 4).shape == (4, 2)
    assert np.array_equal(random_utils.split(folded, 4), random_utils.split(list(folded), 4))


def test_pytorch_setup_reports_the_trials_device(monkeypatch):
    from algoperf import param_utils, pytorch_utils

    monkeypatch.setenv("TIMETRIAL_DEVICE", "cuda:1")
    assert pytorch_utils.pytorch_setup()[2] == torch.device("cuda:1")
    monkeypatch.setenv("TIMETRIAL_DEVICE", "cpu")
    assert pytorch_utils.pytorch_setup()[2] == torch.device("cpu")
    shapes = param_utils.pytorch_param_shapes(torch.nn.Linear(3, 2))
    assert shapes == {"weight": ShapeTuple((2, 3)), "bias": ShapeTuple((2,))}
    assert param_utils.pytorch_param_types(shapes)["bias"].name == "BIAS"
