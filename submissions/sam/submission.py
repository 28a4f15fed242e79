"""SAM (Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for Efficiently Improving
Generalization"). Each step takes two forward/backward passes on the same batch:
  e = rho g / ||g||   (g = grad L(w), the norm over all parameters)
  g_sam = grad L(w + e)   (second pass, batch-norm statistics left alone)
  w <- base_step(w, g_sam)
The base optimizer is SGD with heavy-ball momentum (the paper's choice) or AdamW, picked by the
`base_optimizer` hyperparameter.
"""

import torch

from optimlib import schedules

BASE_OPTIMIZERS = {
    "sgd_momentum": lambda params, hp: torch.optim.SGD(params, lr=hp.learning_rate, momentum=1.0 - hp.one_minus_beta1,
                                                       weight_decay=hp.weight_decay),
    "adamw": lambda params, hp: torch.optim.AdamW(params, lr=hp.learning_rate, betas=(1.0 - hp.one_minus_beta1, hp.beta2),
                                                  eps=hp.epsilon, weight_decay=hp.weight_decay),
}


class SAM(torch.optim.Optimizer):
    """Wraps a base optimizer; shares its parameter groups, so schedules reach the base step."""

    def __init__(self, base_optimizer: torch.optim.Optimizer, rho: float = 0.05):
        if rho < 0:
            raise ValueError(f"SAM: rho must be >= 0, got {rho}")
        self.base_optimizer = base_optimizer
        super().__init__(base_optimizer.param_groups, {"rho": rho})
        self.param_groups = base_optimizer.param_groups
        self.rho = rho

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        scale = self.rho / (grad_norm + 1e-12)
        perturbations = [p.grad * scale for p in params]
        torch._foreach_add_(params, perturbations)
        with torch.enable_grad():
            closure(update_batch_norm=False)
        torch._foreach_sub_(params, perturbations)
        self.base_optimizer.step()
        return loss


def create_optimizer(params, hyperparameters, workload):
    if hyperparameters.base_optimizer not in BASE_OPTIMIZERS:
        raise ValueError(f"sam: base_optimizer={hyperparameters.base_optimizer!r}; valid: {sorted(BASE_OPTIMIZERS)}")
    base = BASE_OPTIMIZERS[hyperparameters.base_optimizer](params.parameters(), hyperparameters)
    return SAM(base, rho=hyperparameters.rho)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
