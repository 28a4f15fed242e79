"""A submission written for AlgoPerf's PyTorch API runs unchanged (tests/fixtures/algoperf_style)."""

from pathlib import Path

import pytest

from harness.core.registry import workload_classes
from harness.core.runner import TrialSpec, run_trial
from harness.core.submission import check_submission, load_submission

FIXTURE = str(Path(__file__).parent / "fixtures" / "algoperf_style")


def test_algoperf_submission_loads_through_the_shim():
    submission = load_submission(FIXTURE)
    assert submission.api == "algoperf"
    assert submission.module.USE_PYTORCH_DDP is False
    # no metadata.json: the first fixed point of the search space is the untuned configuration
    assert submission.default_hyperparameters()["learning_rate"] == 0.03
    _, problems, warnings = check_submission(FIXTURE)
    assert "missing metadata.json" in " ".join(problems)


def test_algoperf_submission_reaches_the_target(cpu_trial, tmp_path):
    with pytest.warns(UserWarning, match="default batch size"):
        record = cpu_trial(FIXTURE, "logreg_breast_cancer", max_steps=5200)
    assert record.status == "reached", record.traceback
    assert record.batch_size == 128  # get_batch_size raised ValueError -> the workload's default
    [train_log] = tmp_path.rglob("train.jsonl")
    assert '"loss"' in train_log.read_text()  # workload.metrics_logger rows are kept


def test_algoperf_batch_size_by_algoperf_name(tmp_path, data_dir):
    record = run_trial(TrialSpec("logreg_digits", FIXTURE, preset="tiny", max_steps=3), tmp_path, data_dir=data_dir)
    assert record.batch_size == 16  # logreg_digits corresponds to AlgoPerf's "mnist"


# Workloads whose data ships offline; the download-only ones (LIBSVM, CIFAR-10, ...) are covered by
# their loader tests on generated files.
OFFLINE = sorted(name for name, cls in workload_classes().items() if cls(preset="tiny").data_available())


@pytest.mark.parametrize("workload", OFFLINE)
def test_algoperf_submission_runs_on_every_workload(workload, tmp_path, data_dir):
    spec = TrialSpec(workload, FIXTURE, preset="tiny", max_steps=3, stop_at_target=False, budget_multiplier=100.0)
    record = run_trial(spec, tmp_path, data_dir=data_dir)
    assert record.status in ("reached", "budget"), record.traceback
    assert record.steps == 3


PRE_0_5 = '''
"""An AlgoPerf submission from before the package was renamed (algorithmic_efficiency -> algoperf), whose
get_batch_size looks names up in a dict as AlgoPerf's dev algorithms do (KeyError for unknown names)."""
import torch
from algorithmic_efficiency import spec
from algorithmic_efficiency.pytorch_utils import pytorch_setup
import algorithmic_efficiency.spec

BATCH_SIZES = {"mnist": 16}


def get_batch_size(workload_name):
    return BATCH_SIZES[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    assert algorithmic_efficiency.spec.ForwardPassMode is spec.ForwardPassMode
    return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=0.1)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
                  loss_type, optimizer_state, eval_results, global_step, rng):
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad()
    logits, model_state = workload.model_fn(current_param_container, batch, model_state, spec.ForwardPassMode.TRAIN,
                                            rng, True)
    loss = workload.loss_fn(batch["targets"], logits)
    (loss["summed"] / loss["n_valid_examples"]).backward()
    optimizer.step()
    return optimizer_state, current_param_container, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters,
                   global_step, rng):
    return next(input_queue)
'''


def test_pre_0_5_package_name_and_key_error_batch_sizes(tmp_path, data_dir):
    file = tmp_path / "old_style.py"
    file.write_text(PRE_0_5)
    digits = run_trial(TrialSpec("logreg_digits", str(file), preset="tiny", max_steps=3), tmp_path, data_dir=data_dir)
    assert digits.status in ("budget", "reached"), digits.traceback
    assert digits.batch_size == 16
    with pytest.warns(UserWarning, match="get_batch_size: 'logreg_wine'"):
        wine = run_trial(TrialSpec("logreg_wine", str(file), preset="tiny", max_steps=3), tmp_path, data_dir=data_dir)
    assert wine.status in ("budget", "reached") and wine.batch_size == 64  # the workload's default
