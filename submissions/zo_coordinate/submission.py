"""Sparse coordinate-wise zeroth-order SGD, DeepZero's CGE estimator (Chen, Zhang, Liu, Hong, Wang, Jia,
Kailkhura, Liu: DeepZero: Scaling up Zeroth-Order Optimization for Deep Model Training, ICLR 2024).
Forward passes only (closure(backward=False)).

CGE estimates each trainable coordinate's partial derivative by a forward difference,

    g_i = (f(theta + mu e_i) - f(theta)) / mu,    i in S;     theta_S <- theta_S - lr (g_S + wd theta_S)

at d + 1 forward passes a step (not d + 1 backward ones), with far lower variance than random-direction
estimates. DeepZero trains a sparse subnetwork S so the cost scales with |S|; it picks S by
ZO-GraSP pruning scores, here S is a uniformly random mask of density `density` drawn once from a
torch.Generator seeded with the trial seed (the reference test regenerates it). Coordinates outside S
keep their initial values. The paper's forward-pass parallelisation and feature reuse are not
implemented: each perturbed loss is a full forward pass.
"""

import torch

from optimlib import schedules


class CoordinateZerothOrderSGD(torch.optim.Optimizer):
    def __init__(self, params, lr, difference_step=5e-3, density=1.0, weight_decay=0.0, seed=0):
        if lr < 0 or difference_step <= 0 or not 0 < density <= 1 or weight_decay < 0:
            raise ValueError(f"invalid coordinate ZO settings: lr={lr} difference_step={difference_step} (> 0) "
                             f"density={density} (in (0, 1]) weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.mu = difference_step
        generator = torch.Generator().manual_seed(seed)
        params = [p for group in self.param_groups for p in group["params"]]
        self.coordinates = [(p, torch.nonzero(torch.rand(p.numel(), generator=generator) < density).flatten())
                            for p in params]

    @torch.no_grad()
    def step(self, closure):
        base_loss = float(closure(backward=False))
        estimates = []
        for p, indices in self.coordinates:
            flat = p.view(-1)
            grad = torch.zeros(len(indices), dtype=p.dtype, device=p.device)
            for k, i in enumerate(indices.tolist()):
                original = flat[i].clone()
                flat[i] = original + self.mu
                grad[k] = (float(closure(backward=False)) - base_loss) / self.mu
                flat[i] = original
            estimates.append(grad)
        group = self.param_groups[0]
        for (p, indices), grad in zip(self.coordinates, estimates):
            flat = p.view(-1)
            flat[indices] -= group["lr"] * (grad + group["weight_decay"] * flat[indices])
        return torch.tensor(base_loss)


def create_optimizer(params, hyperparameters, workload):
    return CoordinateZerothOrderSGD(params.parameters(), lr=hyperparameters.learning_rate,
                                    difference_step=hyperparameters.difference_step, density=hyperparameters.density,
                                    weight_decay=hyperparameters.weight_decay, seed=torch.initial_seed())


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
