import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import LogisticProblem, run_submission


def momo_reference(problem, hp, theta0, steps, lr_multiplier, adam_beta2=None):
    """Schaipp et al., MoMo (Algorithm 1) and MoMo-Adam (Algorithm 2 with D_k = sqrt(v_hat) + eps),
    with the proximal weight decay and the online lower-bound estimate (Algorithm 3 / eq. 18).
    Returns the iterates and which branches were taken."""
    beta, wd = 1 - hp.get("one_minus_beta", hp.get("one_minus_beta1")), hp["weight_decay"]
    bias_correction = adam_beta2 is not None or hp.get("bias_correction", False)
    lb0 = lb = hp["lower_bound"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x = theta0.copy()
    branches = {"truncated": 0, "model": 0, "clipped": 0, "reset": 0}
    out = []
    for k in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(k - 1, horizon, hp["warmup_factor"])
        f, g = problem.loss_and_grad(x)
        if k == 1:
            # without bias correction the averages start at the first values, with it at zero
            fbar, d, gamma, v = (0.0, 0.0 * g, 0.0, 0.0 * g) if bias_correction else (f, g, g @ x, 0.0 * g)
        fbar = beta * fbar + (1 - beta) * f
        d = beta * d + (1 - beta) * g
        gamma = beta * gamma + (1 - beta) * (g @ x)
        rho = 1 - beta**k if bias_correction else 1.0
        if adam_beta2 is None:
            D = np.ones_like(x)
        else:
            v = adam_beta2 * v + (1 - adam_beta2) * g**2
            D = np.sqrt(v / (1 - adam_beta2**k)) + hp["epsilon"]
        decay = 1 + lr * wd
        if hp["estimate_lower_bound"]:
            cap = decay * fbar + d @ x - decay * gamma
            if cap < decay * rho * lb:
                lb = max(cap / (2 * decay * rho), lb0)
                branches["reset"] += 1
        gap = decay * (fbar - rho * lb) + d @ x - decay * gamma
        norm = d @ (d / D)
        branches["clipped"] += gap <= 0
        tau = min(lr / rho, max(gap, 0.0) / norm)
        branches["truncated" if tau == lr / rho else "model"] += 1
        if hp["estimate_lower_bound"]:
            lb = max((fbar + d @ x - gamma - 0.5 * tau * norm) / rho, lb0)
        x = (x - tau * d / D) / decay
        out.append(x)
    return out, branches


MOMO_CASES = {
    # lr between the model step and its cap: both the truncated and the model step occur
    "plain": {"learning_rate": 3.0, "lower_bound": 0.0, "estimate_lower_bound": False, "bias_correction": False},
    # a lower bound above the attainable loss: the model value falls under it and tau clips to 0
    "clipped": {"learning_rate": 3.0, "lower_bound": 0.6, "estimate_lower_bound": False, "bias_correction": False},
    # unknown f*: the online estimate with its reset, starting from a bound that is too high
    "online": {"learning_rate": 3.0, "lower_bound": -1.0, "estimate_lower_bound": True, "bias_correction": True},
}


@pytest.mark.parametrize("case", sorted(MOMO_CASES))
def test_momo_matches_paper_equations(case, lr_multiplier):
    problem = LogisticProblem()
    theta0 = np.random.default_rng(7).standard_normal(problem.d + 1)
    hp = {"one_minus_beta": 0.1, "weight_decay": 1e-2, "warmup_factor": 0.1, "step_hint_factor": 0.3,
          **MOMO_CASES[case]}
    got = run_submission("momo", hp, problem, 25, theta0)
    want, branches = momo_reference(problem, hp, theta0, 25, lr_multiplier)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)
    expected = {"plain": ("truncated", "model"), "clipped": ("clipped",), "online": ("model", "reset")}[case]
    assert all(branches[b] > 0 for b in expected), branches


def test_momo_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "momo", load_submission("momo").metadata["tuned_logreg"])
