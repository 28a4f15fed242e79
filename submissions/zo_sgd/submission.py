"""Zeroth-order SGD with MeZO's two-point estimates (Malladi et al.: Fine-Tuning Language Models with Just
Forward Passes, NeurIPS 2023), the estimator that ZO2, DeepZero's ZO-GD baseline and zeroth-order
fine-tuning of quantized networks build on. No backward pass: every loss comes from
closure(backward=False).

For each of q perturbations, with z ~ N(0, I) regenerated from a stored seed instead of kept:

    theta + eps z -> L+,   theta - eps z -> L-,   projected_grad = (L+ - L-) / (2 eps)
    theta <- theta - lr (mean_k projected_grad_k z_k + wd theta)

MeZO's memory trick is the seed: z is drawn three times (perturb, un-perturb, update) from the
same seed, so memory stays at inference level. The step seeds come from a torch.Generator seeded
with the trial seed, so a run (and the reference test) is reproducible.
"""

import torch

from optimlib import schedules

SEED_RANGE = 2**62


class ZerothOrderSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, perturbation_scale=1e-3, num_perturbations=1, weight_decay=0.0, seed=0):
        if lr < 0 or perturbation_scale <= 0 or int(num_perturbations) < 1 or weight_decay < 0:
            raise ValueError(f"invalid zeroth-order settings: lr={lr} perturbation_scale={perturbation_scale} (> 0) "
                             f"num_perturbations={num_perturbations} (>= 1) weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.eps, self.num_perturbations = perturbation_scale, int(num_perturbations)
        self.seeds = torch.Generator().manual_seed(seed)

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def _add_noise_(self, seed: int, scale: float) -> None:
        """theta += scale * z(seed); z is regenerated identically for the same seed."""
        generator = torch.Generator(device=self._params()[0].device).manual_seed(seed)
        for p in self._params():
            p.add_(torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype), alpha=scale)

    @torch.no_grad()
    def step(self, closure):
        estimates = []
        for _ in range(self.num_perturbations):
            seed = int(torch.randint(SEED_RANGE, (), generator=self.seeds))
            self._add_noise_(seed, self.eps)
            loss_plus = float(closure(backward=False))
            self._add_noise_(seed, -2.0 * self.eps)
            loss_minus = float(closure(backward=False))
            self._add_noise_(seed, self.eps)
            estimates.append((seed, (loss_plus - loss_minus) / (2.0 * self.eps)))
        group = self.param_groups[0]
        for p in self._params():
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        for seed, projected_grad in estimates:
            self._add_noise_(seed, -group["lr"] * projected_grad / self.num_perturbations)
        # No extra forward at the new point (it would cost a third of the step): the logged
        # training loss is the last closure call's, at theta - eps z.
        return torch.tensor(0.5 * (loss_plus + loss_minus))


def create_optimizer(params, hyperparameters, workload):
    return ZerothOrderSGD(params.parameters(), lr=hyperparameters.learning_rate,
                          perturbation_scale=hyperparameters.perturbation_scale,
                          num_perturbations=hyperparameters.num_perturbations,
                          weight_decay=hyperparameters.weight_decay, seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
