import json
from pathlib import Path

import numpy as np
import pytest
from submission_testing import LogisticProblem, run_submission

from harness.core.runner import TrialSpec, run_trial

METADATA = json.loads((Path(__file__).parents[2] / "submissions/lazy_newton/metadata.json").read_text())


def reference(problem, hp, steps):
    """Doikov et al. (2023): H taken at the snapshot every m steps; x -= (H + sqrt(M ||g||) I)^{-1} g."""
    theta = np.zeros(problem.d + 1)
    out = []
    for t in range(steps):
        if t % hp["hessian_period"] == 0:
            snapshot_hessian = problem.hessian(theta)
        _, g = problem.loss_and_grad(theta)
        regularization = np.sqrt(hp["hessian_lipschitz"] * np.linalg.norm(g))
        theta = theta - np.linalg.solve(snapshot_hessian + regularization * np.eye(len(theta)), g)
        out.append(theta)
    return out


@pytest.mark.parametrize("period", [1, 4])
def test_matches_numpy_reference(period):
    problem = LogisticProblem()
    hp = {"hessian_lipschitz": 0.5, "hessian_period": period}
    got = run_submission("lazy_newton", hp, problem, steps=20)
    want = reference(problem, hp, 20)
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-10, err_msg=f"step {step}")


def test_other_families_are_unsupported(tmp_path, data_dir):
    """Declared in metadata (recorded 'unsupported'), and raised if it is run there anyway."""
    from harness.core.spec import UnsupportedWorkloadError
    from submissions.lazy_newton.submission import create_optimizer

    class ImageWorkload:
        name, family = "resnet", "resnet"

    with pytest.raises(UnsupportedWorkloadError, match="'logreg' family only"):
        create_optimizer(None, {}, ImageWorkload())
    spec = TrialSpec(workload="resnet", submission="lazy_newton", preset="tiny")
    record = run_trial(spec, tmp_path, data_dir=data_dir)
    assert record.status == "unsupported"


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("lazy_newton", "logreg_wine", METADATA.get("tuned_logreg", {}))
    assert record.status == "reached", record.error or record.best_metric
