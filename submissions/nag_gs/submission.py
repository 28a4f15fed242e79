"""NAG-GS (Leplat et al., "NAG-GS: Semi-Implicit, Accelerated and Robust Stochastic Optimizer"):
a Gauss-Seidel (semi-implicit) discretisation of an accelerated Nesterov-like SDE. Per step, with
step size a (the learning rate), strong-convexity guess mu and damping gamma:
  v <- (v + (a/gamma)(mu x - g)) / (1 + a mu / gamma)
  gamma <- (a mu + gamma) / (1 + a)
  x <- (x + a v) / (1 + a)
with v_0 = x_0 and gamma_0 = gamma (per parameter, as in the official code).
"""

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


class NAGGS(PerParameterOptimizer):
    def __init__(self, params, lr: float, mu: float = 1.0, gamma: float = 1.0):
        if lr <= 0 or mu <= 0 or gamma <= 0:
            raise ValueError(f"NAGGS: lr, mu and gamma must be positive; got lr={lr}, mu={mu}, gamma={gamma}")
        super().__init__(params, {"lr": lr, "mu": mu, "gamma": gamma})

    def update_parameter(self, p, grad, state, group):
        a, mu = group["lr"], group["mu"]
        if not state:
            state.update(v=p.detach().clone(), gamma=group["gamma"])
        gamma, v = state["gamma"], state["v"]
        v.add_(p * mu - grad, alpha=a / gamma).div_(1 + a * mu / gamma)
        state["gamma"] = (a * mu + gamma) / (1 + a)
        p.add_(v, alpha=a).div_(1 + a)


def create_optimizer(params, hyperparameters, workload):
    return NAGGS(params.parameters(), lr=hyperparameters.learning_rate, mu=hyperparameters.mu,
                 gamma=hyperparameters.gamma)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
