import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission
from test_momo import momo_reference


@pytest.mark.parametrize("estimate_lower_bound", [False, True])
def test_momo_adam_matches_paper_equations(estimate_lower_bound, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(8).standard_normal(problem.d + 1)
    hp = {"learning_rate": 1.0, "one_minus_beta1": 0.1, "beta2": 0.99, "epsilon": 1e-8, "weight_decay": 1e-2,
          "lower_bound": 0.0, "estimate_lower_bound": estimate_lower_bound, "warmup_factor": 0.1,
          "step_hint_factor": 0.3}
    got = run_submission("momo_adam", hp, problem, 25, theta0)
    want, branches = momo_reference(problem, hp, theta0, 25, lr_multiplier, adam_beta2=hp["beta2"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)
    assert branches["truncated"] > 0 and branches["model"] > 0, branches


def test_momo_adam_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "momo_adam", load_submission("momo_adam").metadata["tuned_logreg"])
