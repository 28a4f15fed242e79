"""Sophia (Liu et al., Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
Pre-training), Algorithm 3 of the paper, with either diagonal Hessian estimator:

    m = b1 m + (1 - b1) g
    every k steps (t = 1, k + 1, 2k + 1, ...):  h = b2 h + (1 - b2) h_hat
        gnb:         h_hat = B * g_hat * g_hat, g_hat = gradient of the mean loss on labels
                     sampled from the model's own output (Gauss-Newton-Bartlett, Sophia-G)
        hutchinson:  h_hat = u * (H u), u ~ N(0, I) (Sophia-H)
    theta -= lr * wd * theta
    theta -= lr * clip(m / max(rho * h, eps), 1)        (elementwise clip to [-1, 1])

B is the number of labels in the batch (the mask's sum when the batch has one). The random draws
(sampled labels, u) come from a generator seeded with the trial's torch seed, so a run is
reproducible and a reference implementation can regenerate them. Warm-up + cosine decay as in the
paper's GPT-2 runs.
"""

import torch

from optimlib import schedules

ESTIMATORS = ("gnb", "hutchinson")


class Sophia(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=0.1, eps=1e-15,
                 estimator="gnb", hessian_interval=10, seed=0):
        if estimator not in ESTIMATORS:
            raise ValueError(f"Sophia estimator={estimator!r}; valid: {list(ESTIMATORS)}")
        if lr <= 0 or rho <= 0 or eps <= 0 or weight_decay < 0 or hessian_interval < 1 or not all(
                0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Sophia settings: lr={lr} betas={betas} rho={rho} eps={eps} "
                             f"weight_decay={weight_decay} hessian_interval={hessian_interval}")
        super().__init__(params, {"lr": lr, "betas": betas, "rho": rho, "weight_decay": weight_decay, "eps": eps})
        self.estimator = estimator
        self.hessian_interval = hessian_interval
        self.steps = 0
        device = next(p.device for group in self.param_groups for p in group["params"])
        self.generator = torch.Generator(device).manual_seed(seed)

    def _params(self):
        """The parameters the last closure call gave a gradient (unused ones have none)."""
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    def _hutchinson(self, closure):
        """Loss and u * (H u); leaves the plain gradient in p.grad."""
        with torch.enable_grad():
            loss = closure(create_graph=True)
            params = self._params()
            grads = [p.grad for p in params]
            probes = [torch.randn(p.shape, generator=self.generator, dtype=p.dtype, device=p.device) for p in params]
            hvps = torch.autograd.grad(grads, params, grad_outputs=probes, allow_unused=True)
        for p in params:
            p.grad = p.grad.detach()
        # a parameter the loss is linear in has no second-order path: its curvature is 0
        return loss.detach(), [u * hvp if hvp is not None else torch.zeros_like(u) for u, hvp in zip(probes, hvps)]

    def _gauss_newton_bartlett(self, closure):
        """Loss and B * g_hat^2 from labels sampled from the model; leaves the data gradient in p.grad."""
        with torch.enable_grad():
            loss = closure()
            params = self._params()
            data_grads = [p.grad.clone() for p in params]
            # second pass of the same batch: batch-norm statistics were already updated by the first
            closure(labels="sampled", generator=self.generator, update_batch_norm=False)
        batch = closure.batch
        labels = batch["weights"].sum() if batch.get("weights") is not None else batch["targets"].numel()
        estimates = [labels * p.grad * p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        for p, g in zip(params, data_grads):
            p.grad = g
        return loss, estimates

    @torch.no_grad()
    def step(self, closure):
        refresh = self.steps % self.hessian_interval == 0
        self.steps += 1
        if refresh:
            estimate = self._hutchinson if self.estimator == "hutchinson" else self._gauss_newton_bartlett
            loss, estimates = estimate(closure)
            estimates = dict(zip(self._params(), estimates))  # the data gradients are back in p.grad
        else:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(exp_avg=torch.zeros_like(p), hessian=torch.zeros_like(p))
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                if refresh:
                    state["hessian"].mul_(beta2).add_(estimates[p], alpha=1.0 - beta2)
                p.mul_(1.0 - group["lr"] * group["weight_decay"])
                ratio = state["exp_avg"] / (group["rho"] * state["hessian"]).clamp_min(group["eps"])
                p.sub_(ratio.clamp_(-1.0, 1.0), alpha=group["lr"])
        return loss


def create_optimizer(params, hyperparameters, workload):
    return Sophia(params.parameters(), lr=hyperparameters.learning_rate,
                  betas=(hyperparameters.beta1, hyperparameters.beta2), rho=hyperparameters.rho,
                  weight_decay=hyperparameters.weight_decay, eps=hyperparameters.epsilon,
                  estimator=hyperparameters.estimator, hessian_interval=hyperparameters.hessian_interval,
                  # the trial's seed (the runner seeds torch with it): reproducible draws per trial
                  seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
