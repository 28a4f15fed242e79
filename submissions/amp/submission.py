"""Adversarial Model Perturbation (Zheng, Zhang & Mao, Regularizing Neural Networks via
Adversarial Model Perturbation, CVPR 2021): minimise the worst loss within a norm ball around the
weights. Per step, starting from delta = 0, `inner_steps` ascent steps on the batch loss

    delta <- Proj_{||delta_p|| <= epsilon}(delta + inner_lr * grad L(w + delta))    (per parameter tensor)

then SGD with momentum and weight decay at w with the gradient taken at w + delta (one extra
forward/backward per inner step; inner_steps = 1 costs as much as SAM).
"""

import torch

from optimlib import schedules


class AMP(torch.optim.Optimizer):
    def __init__(self, params, lr, epsilon=0.5, inner_lr=1.0, inner_steps=1, momentum=0.9, weight_decay=0.0):
        if epsilon < 0 or inner_lr < 0 or inner_steps < 0:
            raise ValueError(f"invalid AMP settings: epsilon={epsilon} inner_lr={inner_lr} inner_steps={inner_steps}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.epsilon, self.inner_lr, self.inner_steps = epsilon, inner_lr, inner_steps

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        deltas = [torch.zeros_like(p) for p in params]
        for _ in range(self.inner_steps):
            for p, delta in zip(params, deltas):
                moved = delta + self.inner_lr * p.grad
                moved.mul_(min(1.0, self.epsilon / (float(moved.norm()) + 1e-12)))
                p.add_(moved - delta)  # p = w + new delta
                delta.copy_(moved)
            with torch.enable_grad():
                closure()
        for p, delta in zip(params, deltas):
            p.sub_(delta)  # back to w; p.grad is the gradient at w + delta
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad + group["weight_decay"] * p
                buffer = self.state[p].get("momentum")
                buffer = grad.clone() if buffer is None else buffer.mul_(group["momentum"]).add_(grad)
                self.state[p]["momentum"] = buffer
                p.add_(buffer, alpha=-group["lr"])
        return loss


def create_optimizer(params, hyperparameters, workload):
    return AMP(params.parameters(), lr=hyperparameters.learning_rate, epsilon=hyperparameters.epsilon,
               inner_lr=hyperparameters.inner_lr, inner_steps=hyperparameters.inner_steps,
               momentum=hyperparameters.momentum, weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
