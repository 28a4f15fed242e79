"""SANIA (Abdukhakimov, Xiang, Kamzolov, Gower & Takac, SANIA: Polyak-type Optimization Framework
Leads to Scale Invariant Stochastic Algorithms, 2023): a learning-rate-free preconditioned Polyak
step. With f the batch loss (optimal value taken as 0), g its gradient and B a diagonal
preconditioner,

    c = f / ||g||^2_{B^-1},     ||g||^2_{B^-1} = <B^-1 g, g>
    t = 1 - sqrt(1 - 2c)  if 2c < 1  (the root of the quadratic model f - t||g||^2 + t^2/2 ||g||^2 = 0)
    t = 1                 otherwise   (the model has no root: a full preconditioned Newton-type step)
    x <- x - lr * t * B^-1 g

B (its square root when `sqrt`) is clipped below at `epsilon` and is one of
    "adagrad":  sum of g^2             (the paper's AdaGrad-SQR)
    "adam":     bias-corrected EMA of g^2 with beta2   (Adam-SQR)
    "identity": I                      (the un-preconditioned Polyak-type step)
lr = 1 with no decay is the paper's method. With f* = 0 taken as the optimal value, a problem
that does not interpolate its data (regularised logistic regression) keeps a stochastic step
that never vanishes; `lr_decay` multiplies it by a cosine decay over step_hint for such problems.
"""

import math

import torch

from optimlib import schedules

PRECONDITIONERS = ("adagrad", "adam", "identity")


class SANIA(torch.optim.Optimizer):
    def __init__(self, params, lr=1.0, preconditioner="adagrad", sqrt=False, beta2=0.999, epsilon=0.1):
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner={preconditioner!r}; valid: {list(PRECONDITIONERS)}")
        if epsilon <= 0 or not 0 <= beta2 < 1:
            raise ValueError(f"invalid SANIA settings: epsilon={epsilon} beta2={beta2}")
        super().__init__(params, {"lr": lr})
        self.preconditioner, self.sqrt, self.beta2, self.epsilon = preconditioner, sqrt, beta2, epsilon
        self.steps = 0

    def curvature(self, p: torch.Tensor) -> torch.Tensor:
        """The diagonal of B for parameter p, after adding this step's gradient."""
        if self.preconditioner == "identity":
            return torch.ones_like(p)
        accumulator = self.state[p].setdefault("second_moment", torch.zeros_like(p))
        if self.preconditioner == "adagrad":
            accumulator.add_(p.grad.square())
            diagonal = accumulator
        else:
            accumulator.mul_(self.beta2).add_(p.grad.square(), alpha=1.0 - self.beta2)
            diagonal = accumulator / (1.0 - self.beta2 ** self.steps)
        diagonal = diagonal.clamp(min=self.epsilon)
        return diagonal.sqrt() if self.sqrt else diagonal

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = float(closure())
        self.steps += 1
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        directions = [p.grad / self.curvature(p) for p in params]
        scaled_norm = sum(float((d * p.grad).sum()) for d, p in zip(directions, params))
        step_size = 1.0
        if 2.0 * loss < scaled_norm:
            step_size = 1.0 - math.sqrt(1.0 - 2.0 * loss / scaled_norm)
        lr = self.param_groups[0]["lr"]
        for p, direction in zip(params, directions):
            p.sub_(direction, alpha=lr * step_size)
        return torch.tensor(loss)


def create_optimizer(params, hyperparameters, workload):
    return SANIA(params.parameters(), lr=hyperparameters.learning_rate, preconditioner=hyperparameters.preconditioner,
                 sqrt=hyperparameters.sqrt, beta2=hyperparameters.beta2, epsilon=hyperparameters.epsilon)


def schedule(step, step_hint, hyperparameters):
    if hyperparameters.lr_decay:
        return schedules.warmup_cosine(step, step_hint, warmup_fraction=0.0)
    return schedules.constant(step, step_hint)
