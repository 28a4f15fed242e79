"""Induced-metric SGD (The Optimiser Hidden in Plain Sight: Training with the Loss Landscape's
Induced Metric).

The loss landscape is the graph {(theta, xi^(1/2) L(theta))} embedded one dimension up; pulling the
Euclidean metric back onto it gives g_ij = delta_ij + xi d_iL d_jL, whose inverse applied to the
gradient is g / (1 + xi ||g||^2) (Sherman-Morrison): a smooth form of gradient clipping. The
official optimiser adds EMA momentum and smooths the metric's scale over steps:

    m_t = mu m_{t-1} + (1 - mu) g_t                      m_hat = m_t / (1 - mu^t)
    s_t = beta s_{t-1} + (1 - beta) xi ||g_t||^2         s_hat = s_t / (1 - beta^t)
    theta <- theta - lr wd theta - lr m_hat / (1 + s_hat)

With `rms` the gradient is first preconditioned by Adam's RMS (v = EMA(g^2, beta_rms), bias
corrected), the metric uses sum(g^2 / (sqrt(v_hat) + eps)) and the step is m_hat / (sqrt(v_hat) + eps).
||g|| is over the whole model: the landscape is one surface.
"""

import torch

from optimlib import schedules


class InducedMetricSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.9, xi=0.1, beta=0.1, weight_decay=0.0, rms=False,
                 beta_rms=0.99, eps=1e-8):
        if lr < 0 or xi < 0 or weight_decay < 0 or not (0 <= momentum < 1 and 0 <= beta < 1 and 0 <= beta_rms < 1):
            raise ValueError(f"invalid induced-metric settings: lr={lr} momentum={momentum} xi={xi} beta={beta} "
                             f"weight_decay={weight_decay} beta_rms={beta_rms}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.xi, self.beta, self.rms, self.beta_rms, self.eps = xi, beta, bool(rms), beta_rms, eps
        self.steps = 0
        self.metric_ema = 0.0

    def _preconditioner(self, p, g):
        """1 for plain SGD; sqrt(v_hat) + eps with `rms` (v updated here, once per step)."""
        if not self.rms:
            return 1.0
        v = self.state[p].setdefault("exp_avg_sq", torch.zeros_like(p))
        v.mul_(self.beta_rms).addcmul_(g, g, value=1.0 - self.beta_rms)
        return (v / (1.0 - self.beta_rms**self.steps)).sqrt_().add_(self.eps)

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        self.steps += 1
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        denominators = {p: self._preconditioner(p, p.grad) for p in params}
        squared_norm = sum(float((p.grad * p.grad / denominators[p]).sum()) for p in params)
        self.metric_ema = self.beta * self.metric_ema + (1.0 - self.beta) * self.xi * squared_norm
        metric_scale = 1.0 / (1.0 + self.metric_ema / (1.0 - self.beta**self.steps))
        for group in self.param_groups:
            mu, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                m.mul_(mu).add_(p.grad, alpha=1.0 - mu)
                p.mul_(1.0 - lr * group["weight_decay"])
                p.add_(m / (1.0 - mu**self.steps) / denominators[p], alpha=-lr * metric_scale)
        return loss


def create_optimizer(params, hyperparameters, workload):
    return InducedMetricSGD(params.parameters(), lr=hyperparameters.learning_rate,
                            momentum=hyperparameters.momentum, xi=hyperparameters.xi, beta=hyperparameters.beta,
                            weight_decay=hyperparameters.weight_decay, rms=hyperparameters.rms,
                            beta_rms=hyperparameters.beta_rms, eps=hyperparameters.epsilon)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
