"""SMB, stochastic gradient descent with model building (Birbil, Martin, Onay, Ozturk: Bolstering
Stochastic Gradient Descent with Model Building, 2021), the same-batch variant.

Each step tries the SGD trial step s = -lr g on the batch. If it passes the Armijo test
f(x + s) <= f(x) - c lr ||g||^2 it is kept. Otherwise a model of the loss is built from the two
gradients, g at x and g_t at x + s (y = g_t - g), for each parameter tensor separately (the paper's
diagonalization over layers), and the step is replaced by the model's minimiser

    sigma = (||s|| (||y|| + ||g|| / eta) - <y, s>) / 2,       theta = (<y, s> + 2 sigma)^2 - ||s||^2 ||y||^2
    c_g = -||s||^2 / (2 sigma)
    c_s = c_g / theta (-(<y, s> + 2 sigma) <y, g> + ||y||^2 <s, g>)
    c_y = c_g / theta (-(<y, s> + 2 sigma) <s, g> + ||s||^2 <y, g>)
    x <- x + c_s s + c_g g + c_y y

which adjusts both the step length and its direction. No step is modelled when ||g|| < 1e-8.
The optional learning-rate auto-schedule of the official code is not included (its default is off).
"""

import torch

from optimlib import schedules

MIN_GRAD_NORM = 1e-8


def model_step(s: torch.Tensor, g: torch.Tensor, g_trial: torch.Tensor, eta: float) -> torch.Tensor:
    """The minimiser of SMB's model built from the trial step s and the gradients before and after it."""
    y = g_trial - g
    s_flat, g_flat, y_flat = s.reshape(-1), g.reshape(-1), y.reshape(-1)
    ys, ss, yy = torch.dot(y_flat, s_flat), torch.dot(s_flat, s_flat), torch.dot(y_flat, y_flat)
    yg, gg, sg = torch.dot(y_flat, g_flat), torch.dot(g_flat, g_flat), torch.dot(s_flat, g_flat)
    sigma = 0.5 * (ss.sqrt() * (yy.sqrt() + gg.sqrt() / eta) - ys)
    theta = (ys + 2.0 * sigma) ** 2 - ss * yy
    c_g = -ss / (2.0 * sigma)
    c_s = c_g / theta * (-(ys + 2.0 * sigma) * yg + yy * sg)
    c_y = c_g / theta * (-(ys + 2.0 * sigma) * sg + ss * yg)
    return c_s * s + c_g * g + c_y * y


class SMB(torch.optim.Optimizer):
    def __init__(self, params, lr=1.0, eta=0.99, armijo_c=0.1):
        if lr <= 0 or not 0 < eta <= 1 or not 0 < armijo_c < 1:
            raise ValueError(f"invalid SMB settings: lr={lr} (> 0) eta={eta} (in (0, 1]) "
                             f"armijo_c={armijo_c} (in (0, 1))")
        super().__init__(params, {"lr": lr, "eta": eta, "armijo_c": armijo_c})
        self.model_steps = 0  # how often the Armijo test failed and the model step was taken

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = float(closure())
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad.clone() for p in params]
            trial_steps = [-group["lr"] * g for g in grads]
            grad_norm_sq = float(sum((g * g).sum() for g in grads))
            for p, s in zip(params, trial_steps):
                p.add_(s)
            trial_loss = float(closure(backward=False))
            armijo_ok = trial_loss <= loss - group["armijo_c"] * group["lr"] * grad_norm_sq
            if armijo_ok or grad_norm_sq ** 0.5 < MIN_GRAD_NORM:
                continue
            with torch.enable_grad():
                closure()  # gradients at the trial point, same batch
            self.model_steps += 1
            for p, s, g in zip(params, trial_steps, grads):
                p.sub_(s).add_(model_step(s, g, p.grad, group["eta"]))
        return torch.tensor(loss)


def create_optimizer(params, hyperparameters, workload):
    return SMB(params.parameters(), lr=hyperparameters.learning_rate, eta=hyperparameters.eta,
               armijo_c=hyperparameters.armijo_c)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, step_hint, hyperparameters.warmup_factor)
