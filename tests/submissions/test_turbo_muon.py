import numpy as np
import pytest
import torch

from harness.core.submission import load_submission
from submission_testing import run_submission
from optimlib.newton_schulz import MUON_NS_COEFFICIENTS, orthogonalize
from submissions.turbo_muon.submission import TURBO_NS_COEFFICIENTS
from test_muon import MUON_HP, SHAPES, muon_reference, newton_schulz_reference

# The official Turbo-Muon code's last four quintic steps (thib-s/flash-newton-schulz, NS_ours).
TURBO_QUINTIC = [(3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037), (2.8769, -3.1427, 1.2046),
                 (2.8366, -3.0525, 1.2012)]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_turbo_muon_matches_reference(shape, softmax_problem, lr_multiplier):
    problem = softmax_problem(**SHAPES[shape])
    theta0 = np.random.default_rng(13).standard_normal(problem.k * (problem.d + 1))
    hp = {**MUON_HP, "nesterov": True}
    got = run_submission("turbo_muon", hp, problem, 25, theta0)
    want = muon_reference(problem, hp, theta0, 25, lr_multiplier, TURBO_QUINTIC, aol=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_turbo_uses_one_iteration_fewer_and_stays_orthogonal():
    """The paper's claim on precision: AOL + 4 iterations is at least as orthogonal as Muon's 5."""
    assert len(TURBO_NS_COEFFICIENTS) == len(MUON_NS_COEFFICIENTS) - 1
    G = torch.randn(64, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def error(X):
        singular_values = torch.linalg.svdvals(X)
        return float((singular_values - 1).abs().max())

    turbo = orthogonalize(G, TURBO_NS_COEFFICIENTS, aol_preconditioning=True)
    muon = orthogonalize(G, MUON_NS_COEFFICIENTS)
    assert error(turbo) <= error(muon) + 0.05
    np.testing.assert_allclose(turbo.numpy(), newton_schulz_reference(G.numpy(), TURBO_QUINTIC, aol=True), rtol=1e-8,
                               atol=1e-10)


def test_turbo_muon_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "turbo_muon", load_submission("turbo_muon").metadata["tuned_logreg"])
