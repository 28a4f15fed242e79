"""FRUGAL (Zmushko et al., FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for
Scalable Training, ICML 2025): split each gradient into a state-full subspace, updated by AdamW,
and its complement, updated by a state-free rule (signSGD by default).

For every matrix parameter (conv kernels: their (out, in*k*k) view) a random `density` fraction
of the columns is state-full (the paper's random-coordinate projection, drawn column-wise so the
subspace costs only a few column indices); the subspace is redrawn every `update_gap` steps, and
AdamW's moments start afresh in the new one. Vectors (biases, norm scales) stay state-full, as in
the paper. Per step, with lr the scheduled learning rate:

    W <- W * (1 - lr * wd)
    W[:, S]  <- W[:, S]  - lr * m_hat / (sqrt(v_hat) + eps)                  (AdamW on the subspace S)
    W[:, ~S] <- W[:, ~S] - lr * inactive_lr_scale * sign(G[:, ~S])          ("sign_sgd"; "sgd": G; "no": none)
"""

import torch

from optimlib import schedules
from optimlib.adam import adam_direction

INACTIVE_RULES = ("sign_sgd", "sgd", "no")


def matrix_view(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1)


class Frugal(torch.optim.Optimizer):
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, density=0.25,
                 update_gap=200, inactive_update_rule="sign_sgd", inactive_lr_scale=1.0, seed=0):
        if inactive_update_rule not in INACTIVE_RULES:
            raise ValueError(f"inactive_update_rule={inactive_update_rule!r}; valid: {list(INACTIVE_RULES)}")
        if not 0.0 < density <= 1.0 or update_gap < 1:
            raise ValueError(f"density={density} must be in (0, 1] and update_gap={update_gap} >= 1")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.density, self.update_gap = density, update_gap
        self.inactive_update_rule, self.inactive_lr_scale = inactive_update_rule, inactive_lr_scale
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def redraw_subspace(self, p: torch.Tensor) -> None:
        """New random state-full columns for a matrix parameter; its AdamW moments restart there."""
        columns = matrix_view(p).shape[1]
        chosen = max(1, round(self.density * columns))
        index = torch.randperm(columns, generator=self.generator)[:chosen].sort().values.to(p.device)
        self.state[p].update(columns=index, step=0, exp_avg=p.new_zeros(p.shape[0], chosen),
                             exp_avg_sq=p.new_zeros(p.shape[0], chosen))

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        refresh = self.steps % self.update_gap == 0
        self.steps += 1
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.mul_(1.0 - lr * group["weight_decay"])
                if p.dim() < 2:
                    self.adamw(p, p, p.grad, group)
                    continue
                if refresh:
                    self.redraw_subspace(p)
                weight, grad, columns = matrix_view(p), matrix_view(p.grad), self.state[p]["columns"]
                if self.inactive_update_rule != "no":
                    free = grad.sign() if self.inactive_update_rule == "sign_sgd" else grad.clone()
                    free[:, columns] = 0.0
                    weight.add_(free, alpha=-lr * self.inactive_lr_scale)
                subspace = weight[:, columns]
                self.adamw(p, subspace, grad[:, columns], group)
                weight[:, columns] = subspace
        return loss

    def adamw(self, p, target, grad, group):
        """Adam's step on `target` (the parameter or its state-full columns), state kept under p."""
        target.sub_(adam_direction(grad, self.state[p], group["betas"], group["eps"]), alpha=group["lr"])


def create_optimizer(params, hyperparameters, workload):
    return Frugal(params.parameters(), lr=hyperparameters.learning_rate,
                  betas=(hyperparameters.beta1, hyperparameters.beta2), eps=hyperparameters.epsilon,
                  weight_decay=hyperparameters.weight_decay, density=hyperparameters.density,
                  update_gap=hyperparameters.update_gap, inactive_update_rule=hyperparameters.inactive_update_rule,
                  inactive_lr_scale=hyperparameters.inactive_lr_scale, seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
