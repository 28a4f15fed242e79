"""AdaHessian (Yao et al., "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning").
Adam whose second moment tracks a Hutchinson estimate of the Hessian diagonal instead of g^2:
  D = |z * (H z)|,  z Rademacher (one Hessian-vector product through closure(create_graph=True));
  conv kernels (4-D) average D over their spatial dimensions (the paper's spatial averaging);
  m = b1 m + (1-b1) g,  v = b2 v + (1-b2) D^2,
  x <- x - lr (m / (1-b1^t) / ((sqrt(v / (1-b2^t)))^k + eps) + wd x),   k = hessian_power.
The absolute value and the decoupled weight decay follow the official code. The Rademacher
vectors come from a torch.Generator seeded with `seed`, drawn parameter by parameter in order, so
a test can regenerate them.
"""

import math

import torch
import torch.nn.attention

from optimlib import schedules
from optimlib.hyperparameters import adam_settings


def rademacher_like(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, p.shape, generator=generator, device=p.device).to(p.dtype).mul_(2).sub_(1)


def hessian_diagonal_estimate(hz: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    estimate = (hz * z).abs()
    if estimate.dim() == 4:  # conv kernel (out, in, kh, kw): one value per filter slice
        estimate = estimate.mean(dim=(2, 3), keepdim=True).expand_as(estimate)
    return estimate


class AdaHessian(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.15, betas=(0.9, 0.999), eps: float = 1e-4, weight_decay: float = 0.0,
                 hessian_power: float = 1.0, seed: int = 0):
        if lr <= 0 or eps < 0 or weight_decay < 0 or not 0 < hessian_power <= 1 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"AdaHessian: invalid lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}, "
                             f"hessian_power={hessian_power} (valid: 0 < k <= 1)")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "hessian_power": hessian_power})
        device = self.param_groups[0]["params"][0].device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure(create_graph=True)
            params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            zs = [rademacher_like(p, self.generator) for p in params]
            # allow_unused: a parameter that enters the loss linearly (a bias) has H z = 0 off its
            # own graph; autograd then returns None for it
            hzs = torch.autograd.grad(grads, params, grad_outputs=zs, allow_unused=True)
        diagonals = {p: hessian_diagonal_estimate(torch.zeros_like(p) if hz is None else hz, z)
                     for p, hz, z in zip(params, hzs, zs)}
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            k = group["hessian_power"]
            for p in group["params"]:
                if p not in diagonals:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_hessian_diag_sq=torch.zeros_like(p))
                state["step"] += 1
                t = state["step"]
                m, v, d = state["exp_avg"], state["exp_hessian_diag_sq"], diagonals[p]
                m.mul_(beta1).add_(p.grad.detach(), alpha=1 - beta1)
                v.mul_(beta2).addcmul_(d, d, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).pow_(k).add_(group["eps"])
                update = m / (1 - beta1**t) / denom + group["weight_decay"] * p
                p.sub_(update, alpha=group["lr"])
        for p in params:  # drop the graph kept for the Hessian-vector product
            p.grad = p.grad.detach()
        return loss.detach()


def create_optimizer(params, hyperparameters, workload):
    return AdaHessian(params.parameters(), hessian_power=hyperparameters.hessian_power,
                      seed=hyperparameters.hutchinson_seed, **adam_settings(hyperparameters))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
