"""Every submission runs through the submission API on the deep-learning families (tiny presets):
convolutions + BatchNorm (resnet), attention + tied embeddings (gpt2). A method may diverge or
declare a workload unsupported; it may not crash."""

import json

import pytest

from harness.core.runner import TrialSpec, run_trial
from harness.core.submission import SUBMISSIONS_DIR, available_submissions

# The JAX submissions run on these workloads' JAX twins in tests/test_jax*.py and test_optax_submissions.py.
PYTORCH_SUBMISSIONS = [name for name in available_submissions()
                       if json.loads((SUBMISSIONS_DIR / name / "metadata.json").read_text()).get("framework") == "pytorch"]

#: zo_coordinate estimates each coordinate by one forward pass: at its default density (all of them) two
#: steps of tiny gpt2 take minutes; 1% of the coordinates runs the same code paths. adadagrad's per-example
#: gradients of tiny gpt2 are one row per token, and its batch grows 4x in a step: 12 s; a 2-example batch
#: kept there (the cap below it) takes 1 s through the same code
CHEAPER = {"zo_coordinate": {"density": 0.01}, "adadagrad": {"initial_batch_size": 2, "max_batch_multiplier": 0.01}}


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["resnet", "gpt2"])
@pytest.mark.parametrize("submission", PYTORCH_SUBMISSIONS)
def test_submission_trains_or_declines_cleanly(submission, workload, tmp_path, data_dir):
    spec = TrialSpec(workload, submission, preset="tiny", max_steps=2, stop_at_target=False, budget_multiplier=100.0,
                     hyperparameters=CHEAPER.get(submission, {}))
    record = run_trial(spec, tmp_path, data_dir=data_dir)
    assert record.status in ("budget", "reached", "diverged", "unsupported"), record.traceback
    if record.status != "unsupported":
        assert record.steps >= 1
