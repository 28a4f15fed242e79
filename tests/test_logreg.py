"""Logistic-regression suite: reference optima, conditioning, LIBSVM loading, baselines reaching targets."""

import numpy as np
import pytest
from sklearn.datasets import dump_svmlight_file
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

from harness.core.registry import make_workload
from harness.core.spec import DataMissingError
from submission_testing import LogisticProblem
from workloads.logreg import data


@pytest.mark.parametrize("name", ["logreg_breast_cancer", "logreg_wine"])
def test_reference_optimum_matches_scikit_learn(name, data_dir):
    workload = make_workload(name, "cpu", data_dir)
    workload.prepare_data()
    X, y, _, _ = workload._numpy
    # scikit-learn minimises C * sum(loss) + ||w||^2 / 2, i.e. our mean loss + l2/2 ||w||^2 with C = 1 / (l2 n)
    model = SklearnLogisticRegression(C=1.0 / (workload.l2 * len(y)), tol=1e-12, max_iter=100_000).fit(X, y)
    coef = model.coef_.T if workload.n_classes > 2 else model.coef_.ravel()
    theta = np.concatenate([coef.ravel(), model.intercept_])
    f_sklearn, _ = data.objective(theta, X, y, workload.n_classes, workload.l2)
    assert workload.f_star <= f_sklearn + 1e-12
    assert workload.f_star == pytest.approx(f_sklearn, rel=1e-7)
    assert workload.reference["grad_norm"] < 1e-7


def test_objective_gradient_matches_finite_differences():
    problem = LogisticProblem(n=30, d=4, l2=0.1)
    rng = np.random.default_rng(1)
    for n_classes, X, y in [(2, problem.X, problem.y), (3, problem.X, rng.integers(0, 3, 30))]:
        theta = rng.standard_normal((X.shape[1] + 1) * (1 if n_classes == 2 else n_classes))
        _, grad = data.objective(theta, X, y, n_classes, 0.1)
        eps = 1e-6
        numeric = [(data.objective(theta + eps * e, X, y, n_classes, 0.1)[0]
                    - data.objective(theta - eps * e, X, y, n_classes, 0.1)[0]) / (2 * eps) for e in np.eye(len(theta))]
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_optimum_is_cached(tmp_path):
    X, y = data.sklearn_dataset("wine")
    first = data.optimum(X[:, :4], y, 3, 1e-2, tmp_path)
    assert len(list(tmp_path.glob("logreg-optimum-*.json"))) == 1
    assert data.optimum(X[:, :4], y, 3, 1e-2, tmp_path) == first


def test_illconditioned_problem_has_condition_number_at_least_1e4(data_dir):
    workload = make_workload("logreg_illcond", "cpu", data_dir)
    workload.prepare_data()
    X, y, _, _ = workload._numpy
    import scipy.optimize

    theta = scipy.optimize.minimize(data.objective, np.zeros(X.shape[1] + 1), args=(X, y, 2, workload.l2),
                                    jac=True, method="L-BFGS-B", options={"gtol": 1e-12}).x
    Xb = np.hstack([X, np.ones((len(y), 1))])
    p = 1 / (1 + np.exp(-(Xb @ theta)))
    hessian = Xb.T @ (Xb * (p * (1 - p))[:, None]) / len(y) + np.diag([workload.l2] * X.shape[1] + [0.0])
    assert np.linalg.cond(hessian) >= 1e4


def test_libsvm_loader_reads_the_svmlight_format(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 7)) * (rng.random((40, 7)) < 0.4)  # sparse rows, as LIBSVM files are
    y = rng.choice([-1, 1], 40)
    (tmp_path / "libsvm").mkdir()
    dump_svmlight_file(X, y, str(tmp_path / "libsvm" / "a9a"), zero_based=False)
    workload = make_workload("logreg_a9a", "tiny", str(tmp_path))
    workload.n_features = 7  # the generated file is narrower than the real a9a's 123 columns
    assert workload.data_available()
    loaded, labels = workload.load_arrays()
    np.testing.assert_allclose(loaded, X, rtol=1e-6)
    np.testing.assert_array_equal(labels, (y == 1).astype(int))
    workload.prepare_data()
    assert workload.n_classes == 2 and workload.f_star > 0


def test_missing_libsvm_file_names_the_prepare_command(tmp_path):
    workload = make_workload("logreg_covtype", "cpu", str(tmp_path))
    assert not workload.data_available()
    with pytest.raises(DataMissingError, match="scripts/prepare_data.py libsvm-covtype --data-dir"):
        workload.prepare_data()


# Documented tuned points where a baseline's defaults miss a dataset (see docs/baselines.md).
TUNED = {("sgd_momentum", "logreg_illcond"): {"learning_rate": 5.0},
         ("sgd_nesterov", "logreg_illcond"): {"learning_rate": 5.0}}


@pytest.mark.slow
@pytest.mark.parametrize("submission", ["sgd_momentum", "sgd_nesterov", "adamw", "nadamw"])
@pytest.mark.parametrize("workload", ["logreg_breast_cancer", "logreg_digits", "logreg_wine", "logreg_illcond"])
def test_baselines_reach_the_cpu_target(workload, submission, cpu_trial):
    # Bounded by steps (step_hint + slack) rather than seconds, so a busy machine cannot fail it.
    record = cpu_trial(submission, workload, TUNED.get((submission, workload), {}), max_steps=5200)
    assert record.status == "reached", (record.best_metric, record.error)
    assert record.final_metrics["train_rel_subopt"] <= 1e-4
    # logreg_illcond's planted model has label noise: its Bayes accuracy is about 0.67
    assert record.final_metrics["validation_accuracy"] > (0.6 if workload == "logreg_illcond" else 0.9)
