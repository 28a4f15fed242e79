"""DoG and L-DoG (Ivgi, Hinder & Carmon, DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
Size Schedule), with the paper's polynomial-decay iterate averaging for evaluation. Shared by the
`dog` (one step size for the whole model) and `ldog` (one per parameter tensor) submissions.

    rbar_t = max(rbar_{t-1}, ||x_t - x_0||),   rbar_0 = r_eps = reps_rel * (1 + ||x_0||)
    G_t    = G_{t-1} + ||g_t||^2                (G_0 = eps, as the official code, against 0/0)
    x_{t+1} = x_t - lr * rbar_t / sqrt(G_t) * g_t         (lr = 1: no tuning)
    xbar_t = (1 - c_t) xbar_{t-1} + c_t x_t,   c_t = (1 + gamma) / (t + gamma),  gamma = 8

Norms are over the block: the whole parameter group for DoG, each tensor for L-DoG. Weight decay,
when set, is added to the gradient (the official code's L2 form). `swap_in_average` puts xbar into
the model for evaluation (AlgoPerf's `prepare_for_eval`); the next `step` puts the iterate back.
"""

from __future__ import annotations

import torch


class DoG(torch.optim.Optimizer):
    def __init__(self, params, lr=1.0, reps_rel=1e-6, eps=1e-8, weight_decay=0.0, layerwise=False,
                 averaging_gamma=8.0):
        if lr <= 0 or reps_rel <= 0 or eps < 0 or weight_decay < 0 or averaging_gamma < 0:
            raise ValueError(f"invalid DoG settings: lr={lr} reps_rel={reps_rel} eps={eps} "
                             f"weight_decay={weight_decay} averaging_gamma={averaging_gamma}")
        super().__init__(params, {"lr": lr, "reps_rel": reps_rel, "eps": eps, "weight_decay": weight_decay})
        self.layerwise = layerwise
        self.averaging_gamma = averaging_gamma
        self.averaged_steps = 0
        self.evaluating_average = False

    def _blocks(self, group):
        params = [p for p in group["params"] if p.grad is not None]
        return [[p] for p in params] if self.layerwise else ([params] if params else [])

    @torch.no_grad()
    def step(self, closure):
        self.restore_iterate()
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for block in self._blocks(group):
                grads = [p.grad + group["weight_decay"] * p if group["weight_decay"] else p.grad for p in block]
                block_state = self.state[block[0]]
                if "rbar" not in block_state:
                    for p in block:
                        self.state[p]["x0"] = p.clone()
                    x0_norm = torch.linalg.vector_norm(torch.stack([p.norm() for p in block]))
                    block_state["rbar"] = group["reps_rel"] * (1.0 + x0_norm)
                    block_state["G"] = torch.zeros_like(x0_norm) + group["eps"]
                else:
                    distance = torch.linalg.vector_norm(torch.stack([(p - self.state[p]["x0"]).norm() for p in block]))
                    block_state["rbar"] = torch.maximum(block_state["rbar"], distance)
                block_state["G"] += sum(g.pow(2).sum() for g in grads)
                eta = group["lr"] * block_state["rbar"] / block_state["G"].sqrt()
                for p, g in zip(block, grads):
                    p.sub_(eta * g)
        self._update_average()
        return loss

    def _update_average(self):
        self.averaged_steps += 1
        weight = (1.0 + self.averaging_gamma) / (self.averaged_steps + self.averaging_gamma)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "average" not in state:
                    state["average"] = p.clone()
                else:
                    state["average"].lerp_(p, weight)

    @torch.no_grad()
    def swap_in_average(self):
        """Load the averaged iterate into the parameters (for evaluation); keeps the iterate aside."""
        if self.evaluating_average:
            return
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "average" in state:
                    state["iterate"] = p.clone()
                    p.copy_(state["average"])
        self.evaluating_average = True

    @torch.no_grad()
    def restore_iterate(self):
        if not self.evaluating_average:
            return
        for group in self.param_groups:
            for p in group["params"]:
                if "iterate" in self.state[p]:
                    p.copy_(self.state[p].pop("iterate"))
        self.evaluating_average = False


def create_dog(params, hyperparameters, layerwise: bool) -> DoG:
    return DoG(params.parameters(), lr=hyperparameters.learning_rate, reps_rel=hyperparameters.reps_rel,
               eps=hyperparameters.epsilon, weight_decay=hyperparameters.weight_decay, layerwise=layerwise,
               averaging_gamma=hyperparameters.averaging_gamma)


def prepare_for_eval(workload, current_param_container, current_params_types, model_state, hyperparameters,
                     loss_type, optimizer_state, eval_results, global_step, rng):
    """AlgoPerf's prepare_for_eval for a short-path submission whose optimizer is a DoG: evaluate xbar."""
    optimizer_state["optimizer"].swap_in_average()
    return optimizer_state, current_param_container, model_state
