"""GAM (Zhang, Xu, Yang, Cui & Xing, Gradient Norm Aware Minimization Seeks First-Order Flatness and
Improves Generalization, CVPR 2023): descend the loss, the zeroth-order flatness (SAM) and the
first-order flatness rho * max_{||e|| <= rho} ||grad L(w + e)||, with four gradients per step
as in the authors' optimizer:

    g0 = grad L(w);                 g1 = grad L(w + rho g0/||g0||)                   (SAM's gradient)
    d = g1 - g0;  w2 = w + rho_n d/||d||;  g2 = grad L(w2);  g3 = grad L(w2 + rho g2/||g2||)
    u = beta1 g1 + beta3 g3         (the loss + zeroth-order and first-order flatness directions)
    p = g0 + |beta2| g2
    u <- u - gamma * (p - cos(p, u) ||p|| u/||u||)      (remove gamma x p's part orthogonal to u)

then SGD with momentum and weight decay at w along u. Norms run over all parameters.
"""

import torch

from optimlib import schedules

TINY = 1e-12  # guards the normalisations, as the authors' perturb_eps


def flat_norm(tensors) -> float:
    return float(sum(t.square().sum() for t in tensors)) ** 0.5


class GAM(torch.optim.Optimizer):
    def __init__(self, params, lr, rho=0.1, norm_rho=0.02, beta1=1.0, beta2=1.0, beta3=1.0, gamma=0.3,
                 momentum=0.9, weight_decay=0.0):
        if rho < 0 or norm_rho < 0 or gamma < 0:
            raise ValueError(f"invalid GAM settings: rho={rho} norm_rho={norm_rho} gamma={gamma}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})
        self.rho, self.norm_rho, self.gamma = rho, norm_rho, gamma
        self.beta1, self.beta2, self.beta3 = beta1, beta2, beta3

    def gradient_at(self, closure, params, offsets, update_batch_norm):
        """Gradients at w + offset (offset None: at w); the parameters end back at w."""
        if offsets is not None:
            for p, e in zip(params, offsets):
                p.add_(e)
        with torch.enable_grad():
            loss = closure(update_batch_norm=update_batch_norm)
        grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        if offsets is not None:
            for p, e in zip(params, offsets):
                p.sub_(e)
        return loss, grads

    @torch.no_grad()
    def step(self, closure):
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        loss, g0 = self.gradient_at(closure, params, None, True)
        scale = self.rho / (flat_norm(g0) + TINY)
        _, g1 = self.gradient_at(closure, params, [scale * g for g in g0], False)
        difference = [a - b for a, b in zip(g1, g0)]
        ascent = [self.norm_rho / (flat_norm(difference) + TINY) * d for d in difference]
        _, g2 = self.gradient_at(closure, params, ascent, False)
        scale = self.rho / (flat_norm(g2) + TINY)
        _, g3 = self.gradient_at(closure, params, [a + scale * g for a, g in zip(ascent, g2)], False)
        update = [self.beta1 * a + self.beta3 * b for a, b in zip(g1, g3)]
        previous = [a + abs(self.beta2) * b for a, b in zip(g0, g2)]
        update_norm, previous_norm = flat_norm(update), flat_norm(previous)
        cosine = float(sum((a * b).sum() for a, b in zip(previous, update))) / (update_norm * previous_norm + TINY)
        for u, p_ in zip(update, previous):
            u.sub_(self.gamma * (p_ - cosine * previous_norm * u / (update_norm + TINY)))
        group = self.param_groups[0]
        for p, u in zip(params, update):
            direction = u + group["weight_decay"] * p
            buffer = self.state[p].get("momentum")
            buffer = direction.clone() if buffer is None else buffer.mul_(group["momentum"]).add_(direction)
            self.state[p]["momentum"] = buffer
            p.sub_(buffer, alpha=group["lr"])
        return loss


def create_optimizer(params, hyperparameters, workload):
    return GAM(params.parameters(), lr=hyperparameters.learning_rate, rho=hyperparameters.rho,
               norm_rho=hyperparameters.norm_rho, beta1=hyperparameters.beta1, beta2=hyperparameters.beta2,
               beta3=hyperparameters.beta3, gamma=hyperparameters.gamma, momentum=hyperparameters.momentum,
               weight_decay=hyperparameters.weight_decay)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
