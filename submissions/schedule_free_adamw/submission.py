"""Schedule-Free AdamW (Defazio et al., The Road Less Scheduled), the AlgoPerf v0.5
self-tuning winner. No learning-rate schedule beyond a linear warm-up; an online average stands in
for the decay:

    y_t     = (1 - beta1) z_t + beta1 x_t                 (gradients are taken here)
    v       = beta2 v + (1 - beta2) g^2,   g_hat = g / (sqrt(v / (1 - beta2^t)) + eps) + wd * y_t
    z_{t+1} = z_t - lr_t g_hat
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},   c_{t+1} = w_{t+1} / sum_{i<=t+1} w_i,
    w_t     = t^r * lr_max,t^p                            (lr_max,t: the largest warmed-up lr so far)

r = 0 weights the average by the learning rate alone (the paper's default); the AlgoPerf v0.5
submissions used r = 0.75, which leans the average towards later iterates. The warm-up lasts
int(warmup_factor * step_hint_factor * step_hint) steps: the v0.5 self-tuning submission took
int(0.02 * step_hint * 0.75), the external-tuning one int(warmup_factor * step_hint). This is the
update of the `schedulefree` package's AdamWScheduleFree (tests/oracles checks it against the package).

The model holds y during training; `prepare_for_eval` switches it to x (the point the paper
evaluates) and the next step switches back. x is never stored: y and z determine it.
"""

import torch


class ScheduleFreeAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, warmup_steps=0,
                 r=0.0, weight_lr_power=2.0):
        if (lr <= 0 or eps < 0 or weight_decay < 0 or warmup_steps < 0 or r < 0
                or not all(0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"invalid Schedule-Free AdamW settings: lr={lr} betas={betas} eps={eps} "
                             f"weight_decay={weight_decay} warmup_steps={warmup_steps} r={r}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "warmup_steps": warmup_steps, "r": r, "weight_lr_power": weight_lr_power,
                                  "k": 0, "lr_max": 0.0, "weight_sum": 0.0})
        self.evaluating_x = False

    @torch.no_grad()
    def _move_params(self, weight_of_z):
        for group in self.param_groups:
            for p in group["params"]:
                if "z" in self.state[p]:
                    p.lerp_(self.state[p]["z"], weight_of_z(group["betas"][0]))

    def eval_mode(self):
        """Parameters y -> x = (y - (1 - beta1) z) / beta1."""
        if not self.evaluating_x:
            self._move_params(lambda beta1: 1.0 - 1.0 / beta1)
            self.evaluating_x = True

    def train_mode(self):
        """Parameters x -> y = beta1 x + (1 - beta1) z."""
        if self.evaluating_x:
            self._move_params(lambda beta1: 1.0 - beta1)
            self.evaluating_x = False

    @torch.no_grad()
    def step(self, closure):
        self.train_mode()
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            k = group["k"]
            warmup = min(1.0, (k + 1) / group["warmup_steps"]) if group["warmup_steps"] else 1.0
            lr = group["lr"] * warmup
            group["lr_max"] = max(lr, group["lr_max"])
            weight = (k + 1) ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
            group["weight_sum"] += weight
            c = weight / group["weight_sum"] if group["weight_sum"] > 0 else 0.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(z=p.clone(), exp_avg_sq=torch.zeros_like(p))
                z, v = state["z"], state["exp_avg_sq"]
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                g_hat = p.grad / ((v / (1.0 - beta2 ** (k + 1))).sqrt_().add_(group["eps"]))
                g_hat.add_(p, alpha=group["weight_decay"])
                # y_{t+1} from y_t without forming x: y <- y + c (z - y) + lr (beta1 (1 - c) - 1) g_hat
                p.lerp_(z, c).add_(g_hat, alpha=lr * (beta1 * (1.0 - c) - 1.0))
                z.sub_(g_hat, alpha=lr)
            group["k"] = k + 1
        return loss


def create_optimizer(params, hyperparameters, workload):
    return ScheduleFreeAdamW(
        params.parameters(), lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2), eps=hyperparameters.epsilon,
        weight_decay=hyperparameters.weight_decay,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint * hyperparameters.step_hint_factor),
        r=hyperparameters.r, weight_lr_power=hyperparameters.weight_lr_power)


def prepare_for_eval(workload, current_param_container, current_params_types, model_state, hyperparameters,
                     loss_type, optimizer_state, eval_results, global_step, rng):
    optimizer_state["optimizer"].eval_mode()
    return optimizer_state, current_param_container, model_state
