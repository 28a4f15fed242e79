"""MKOR (Mozaffari, Li, Zhang & Mehri Dehnavi, "MKOR: Momentum-Enabled Kronecker-Factor-Based
Optimizer Using Rank-1 Updates", NeurIPS 2023, arXiv 2306.01685).

KFAC-style preconditioning of every nn.Linear weight (with its bias as an extra input column),
W_grad ~ R^-1 [dW, db] L^-1, where the Kronecker factors L = E[a a^T] (layer inputs, 1 appended
for the bias) and R = E[g g^T] (per-example gradients w.r.t. the layer outputs) are kept only
through their inverses, updated with Sherman-Morrison from rank-1 approximations, never inverted:

  every `inv_freq` steps, per layer (vectors captured by module hooks during that step's pass):
    a = mean over rows of [x, 1],   g = mean over rows of (n_rows * dLoss/dy)      (rank-1 approximations)
    L <- gamma L + (1 - gamma) a a^T, i.e.
    L^-1 <- (1/gamma) (L^-1 - (1 - gamma) L^-1 a a^T L^-1 / (gamma + (1 - gamma) a^T L^-1 a))   (same for R, g)
    norm-based stabilizer: if max|L^-1| > threshold:  L^-1 <- (1 - zeta) L^-1 + zeta I    (same for R^-1)
  every step:
    D = R^-1 [dW, db] L^-1,  D <- D ||[dW, db]||_F / ||D||_F      (gradient rescaling)
    fallback: a non-finite or zero D is replaced by the raw gradient
  then the base first-order optimizer (SGD with momentum, or Adam) steps with D as the gradient
  (parameters outside preconditioned Linear layers use their raw gradient).

MKOR-H (optional, `hybrid_window` > 0): every `hybrid_window` steps the mean training loss of the
window is compared with that of the window before; once its relative decrease falls below
`hybrid_threshold`, preconditioning stops for good and the base optimizer continues alone.

Linear layers whose weight is shared with another module (GPT-2's LM head, tied to the token
embedding) and layers whose factors would exceed `max_preconditioner_dim` are not preconditioned;
Conv2d layers are not preconditioned either (only nn.Linear hooks are installed).
"""

import torch

from optimlib import schedules
from optimlib.adam import adam_direction

BASE_OPTIMIZERS = ("sgd", "adam")


def sherman_morrison_ema(inverse: torch.Tensor, v: torch.Tensor, gamma: float) -> torch.Tensor:
    """(gamma F + (1 - gamma) v v^T)^-1 from F^-1 = `inverse` (symmetric)."""
    u = inverse @ v
    denominator = gamma + (1 - gamma) * (v @ u)
    return (inverse - (1 - gamma) * torch.outer(u, u) / denominator) / gamma


class MKOR(torch.optim.Optimizer):
    def __init__(self, model: torch.nn.Module, lr: float, base_optimizer: str = "sgd", momentum: float = 0.9,
                 weight_decay: float = 0.0, adam_betas=(0.9, 0.999), adam_eps: float = 1e-8, stat_decay: float = 0.95,
                 inv_freq: int = 10, stabilizer_threshold: float = 2.0, stabilization_factor: float = 0.1,
                 clipping_value: float = 100.0, max_preconditioner_dim: int = 4096, hybrid_window: int = 0,
                 hybrid_threshold: float = 0.01):
        if base_optimizer not in BASE_OPTIMIZERS:
            raise ValueError(f"MKOR: base_optimizer={base_optimizer!r}; valid: {', '.join(map(repr, BASE_OPTIMIZERS))}")
        checks = {"learning_rate": lr > 0, "momentum": 0 <= momentum < 1, "weight_decay": weight_decay >= 0,
                  "stat_decay": 0 < stat_decay < 1, "inv_freq": int(inv_freq) == inv_freq and inv_freq >= 1,
                  "stabilizer_threshold": stabilizer_threshold > 0, "stabilization_factor": 0 < stabilization_factor <= 1,
                  "clipping_value": clipping_value > 0, "max_preconditioner_dim": max_preconditioner_dim >= 1,
                  "hybrid_window": hybrid_window >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"MKOR: invalid {', '.join(bad)} (valid: learning_rate > 0, 0 <= momentum < 1, "
                             "weight_decay >= 0, 0 < stat_decay < 1, integer inv_freq >= 1, stabilizer_threshold > 0, "
                             "0 < stabilization_factor <= 1, clipping_value > 0, max_preconditioner_dim >= 1, "
                             "hybrid_window >= 0)")
        super().__init__([p for p in model.parameters() if p.requires_grad], {
            "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "betas": adam_betas, "eps": adam_eps})
        self.base_optimizer, self.stat_decay, self.inv_freq = base_optimizer, stat_decay, int(inv_freq)
        self.stabilizer_threshold, self.stabilization_factor = stabilizer_threshold, stabilization_factor
        self.clipping_value, self.hybrid_window, self.hybrid_threshold = clipping_value, int(hybrid_window), hybrid_threshold
        self.steps, self.second_order, self.switched_at = 0, True, None
        self.window_losses, self.previous_window_loss = [], None
        self._capturing = False
        owners = {}
        for module in model.modules():
            for p in module.parameters(recurse=False):
                owners.setdefault(id(p), set()).add(id(module))
        self.layers, self.skipped = [], []
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear) or not module.weight.requires_grad:
                continue
            shared = len(owners[id(module.weight)]) > 1
            too_big = max(module.in_features + (module.bias is not None), module.out_features) > max_preconditioner_dim
            if shared or too_big:
                self.skipped.append((name, "weight shared with another module" if shared else "factor too large"))
                continue
            layer = {"name": name, "module": module, "a_sum": None, "rows": 0, "g_sum": None, "L_inv": None, "R_inv": None}
            module.register_forward_hook(self._forward_hook(layer))
            self.layers.append(layer)

    @property
    def preconditioned_layers(self):
        return [layer["name"] for layer in self.layers]

    def _forward_hook(self, layer):
        def hook(module, inputs, output):
            if not (self._capturing and torch.is_grad_enabled() and output.requires_grad):
                return
            x = inputs[0].detach().reshape(-1, module.in_features)
            a_sum = x.sum(dim=0)
            if module.bias is not None:
                a_sum = torch.cat([a_sum, a_sum.new_full((1,), float(x.shape[0]))])
            layer["a_sum"] = a_sum if layer["a_sum"] is None else layer["a_sum"] + a_sum
            layer["rows"] += x.shape[0]

            def grad_hook(grad):
                g_sum = grad.detach().reshape(-1, module.out_features).sum(dim=0)
                layer["g_sum"] = g_sum if layer["g_sum"] is None else layer["g_sum"] + g_sum

            output.register_hook(grad_hook)
        return hook

    @torch.no_grad()
    def step(self, closure):
        update_factors = self.second_order and self.steps % self.inv_freq == 0
        for layer in self.layers:
            layer.update(a_sum=None, rows=0, g_sum=None)
        self._capturing = update_factors
        try:
            with torch.enable_grad():
                loss = closure()
        finally:
            self._capturing = False
        directions = {}
        if self.second_order:
            for layer in self.layers:
                if update_factors and layer["a_sum"] is not None and layer["g_sum"] is not None:
                    self._update_inverse_factors(layer)
                directions.update(self._precondition(layer))
        self._base_step(directions)
        self.steps += 1
        if self.hybrid_window and self.second_order:
            self._hybrid_check(loss)
        return loss

    def _update_inverse_factors(self, layer):
        # a = mean of [x, 1] over rows; g = mean of rows * dLoss/dy over rows = the column sum of dLoss/dy
        a = (layer["a_sum"] / layer["rows"]).clamp(-self.clipping_value, self.clipping_value)
        g = layer["g_sum"].clamp(-self.clipping_value, self.clipping_value)
        for key, v in (("L_inv", a), ("R_inv", g)):
            inverse = layer[key]
            if inverse is None:
                inverse = torch.eye(v.numel(), dtype=v.dtype, device=v.device)
            inverse = sherman_morrison_ema(inverse, v, self.stat_decay)
            if inverse.abs().max() > self.stabilizer_threshold:  # norm-based stabilizer
                inverse = (1 - self.stabilization_factor) * inverse + self.stabilization_factor * torch.eye(
                    v.numel(), dtype=v.dtype, device=v.device)
            layer[key] = inverse

    def _precondition(self, layer):
        module = layer["module"]
        if layer["L_inv"] is None or module.weight.grad is None:
            return {}
        grad = module.weight.grad
        has_bias = module.bias is not None and module.bias.grad is not None
        if has_bias:
            grad = torch.cat([grad, module.bias.grad.reshape(-1, 1)], dim=1)
        elif module.bias is not None:  # a bias without a gradient: drop its factor row/column
            grad = torch.cat([grad, grad.new_zeros(grad.shape[0], 1)], dim=1)
        preconditioned = layer["R_inv"].to(grad.dtype) @ grad @ layer["L_inv"].to(grad.dtype)
        scale = torch.linalg.vector_norm(grad) / torch.linalg.vector_norm(preconditioned)
        if not torch.isfinite(scale) or not torch.isfinite(preconditioned).all():
            return {}  # fallback: the raw gradient
        preconditioned = preconditioned * scale
        directions = {module.weight: preconditioned[:, :module.in_features].reshape(module.weight.shape)}
        if has_bias:
            directions[module.bias] = preconditioned[:, -1].reshape(module.bias.shape)
        return directions

    def _base_step(self, directions):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = directions.get(p, p.grad)
                if group["weight_decay"]:
                    d = d + group["weight_decay"] * p
                state = self.state[p]
                if self.base_optimizer == "sgd":
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                    p.sub_(state["momentum_buffer"], alpha=group["lr"])
                else:
                    p.sub_(adam_direction(d, state, group["betas"], group["eps"]), alpha=group["lr"])

    def _hybrid_check(self, loss):
        self.window_losses.append(float(loss))
        if len(self.window_losses) < self.hybrid_window:
            return
        current = sum(self.window_losses) / len(self.window_losses)
        self.window_losses = []
        previous, self.previous_window_loss = self.previous_window_loss, current
        if previous is not None and (previous - current) / max(abs(previous), 1e-12) < self.hybrid_threshold:
            self.second_order, self.switched_at = False, self.steps


def create_optimizer(params, hyperparameters, workload):
    return MKOR(params, lr=hyperparameters.learning_rate, base_optimizer=hyperparameters.base_optimizer,
                momentum=hyperparameters.momentum, weight_decay=hyperparameters.weight_decay,
                adam_betas=(hyperparameters.adam_beta1, hyperparameters.adam_beta2),
                adam_eps=hyperparameters.adam_epsilon, stat_decay=hyperparameters.stat_decay,
                inv_freq=hyperparameters.inv_freq, stabilizer_threshold=hyperparameters.stabilizer_threshold,
                stabilization_factor=hyperparameters.stabilization_factor,
                clipping_value=hyperparameters.clipping_value,
                max_preconditioner_dim=int(hyperparameters.max_preconditioner_dim),
                hybrid_window=int(hyperparameters.hybrid_window), hybrid_threshold=hyperparameters.hybrid_threshold)


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
