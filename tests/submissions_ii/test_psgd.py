import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, run_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import UnsupportedWorkloadError

TUNED = {}  # the defaults reach the target


def reference(problem, hp, steps, seed=0):
    """Dense PSGD: Q fitted on the triangular group to (v, Hv) pairs with step mu / ||aa^T - bb^T||_2."""
    generator = torch.Generator().manual_seed(seed)
    d = problem.d
    theta, Q, m = np.zeros(d + 1), None, None
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, problem.step_hint, hp["warmup_factor"])
        _, g = problem.loss_and_grad(theta)
        v = np.concatenate([torch.randn((1, d), generator=generator, dtype=torch.float64).numpy().ravel(),
                            torch.randn((1,), generator=generator, dtype=torch.float64).numpy()])
        h = problem.hessian(theta) @ v
        if Q is None:
            Q = (v @ v / (h @ h)) ** 0.25 * np.eye(d + 1)
        a, b = Q @ h, np.linalg.solve(Q.T, v)
        difference = np.outer(a, a) - np.outer(b, b)
        Q = Q - hp["preconditioner_lr"] / np.linalg.norm(difference, 2) * np.triu(difference) @ Q
        m = (1 - hp["beta"]) * g if m is None else hp["beta"] * m + (1 - hp["beta"]) * g
        theta = theta - lr * Q.T @ Q @ m
        out.append(theta)
    return out


@pytest.mark.parametrize("beta", [0.9, 0.0])
def test_matches_numpy_reference(beta):
    problem = LogisticProblem()
    hp = {"learning_rate": 0.5, "beta": beta, "preconditioner_lr": 0.2, "max_params": 100, "warmup_factor": 0.1}
    got = run_submission("psgd", hp, problem, steps=25)
    for step, (a, b) in enumerate(zip(got, reference(problem, hp, 25))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-12, err_msg=f"step {step}")


def test_preconditioner_approaches_inverse_hessian():
    """Fitting with fixed parameters drives Q^T Q towards H^-1 (the criterion's minimiser)."""
    from submissions.psgd.submission import DensePSGD

    problem = LogisticProblem()
    H = problem.hessian(np.zeros(problem.d + 1))
    opt = DensePSGD([torch.zeros(problem.d + 1, dtype=torch.float64)], lr=0.0, preconditioner_lr=0.05)
    rng = torch.Generator().manual_seed(1)
    for _ in range(3000):
        v = torch.randn(problem.d + 1, generator=rng, dtype=torch.float64)
        opt.fit_preconditioner(v, torch.as_tensor(H) @ v)
    P = (opt.Q.T @ opt.Q).numpy()
    assert np.linalg.norm(P @ H - np.eye(problem.d + 1)) < 0.3


def test_refuses_large_models_cleanly():
    from submissions.psgd.submission import DensePSGD

    with pytest.raises(UnsupportedWorkloadError, match="max_params=10"):
        DensePSGD([torch.zeros(11)], lr=1.0, max_params=10)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("psgd", "logreg_breast_cancer", TUNED)
    assert record.status == "reached", record.error or record.best_metric


@pytest.mark.parametrize("workload", ["resnet", "gpt2"])
def test_deep_network_workloads_are_recorded_unsupported(workload, tmp_path):
    from harness.core.runner import TrialSpec, run_trial

    record = run_trial(TrialSpec(workload=workload, submission="psgd", preset="tiny"), tmp_path, device="cpu")
    assert record.status == "unsupported" and "Kronecker form" in record.error


def test_default_preconditioner_lr_is_psgd_torchs_first_order_value():
    """The fitting step is normalised by ||a a^T - b b^T||_2 (first-order), for which psgd_torch's default
    preconditioner lr is 0.01; the metadata default and the optimizer's own default agree."""
    import inspect

    from harness.core.submission import load_submission
    from submissions.psgd.submission import DensePSGD

    assert load_submission("psgd").default_hyperparameters()["preconditioner_lr"] == 0.01
    assert inspect.signature(DensePSGD).parameters["preconditioner_lr"].default == 0.01
