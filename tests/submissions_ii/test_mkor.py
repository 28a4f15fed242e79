import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, step_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import Hyperparameters, LossType
from harness.core.submission import load_submission

TUNED = json.loads((Path(__file__).parents[2] / "submissions/mkor/metadata.json").read_text())["tuned_logreg"]
NAMES = ("W1", "b1", "W2", "b2")


class MLPProblem(LogisticProblem):
    """Softmax classification with a one-hidden-layer tanh MLP (two nn.Linear layers), float64,
    mini-batches cycled step by step."""

    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    def __init__(self, n=48, d=4, h=3, k=3, l2=1e-2, batch=16, seed=0):
        super().__init__(n=n, d=d, l2=l2, seed=seed, name="reference_mlp")
        rng = np.random.default_rng(seed + 5)
        self.h, self.k = h, k
        self.y = (self.X @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
        self.batches = [np.arange(i, i + batch) for i in range(0, n, batch)]

    def torch_batch(self, step):
        i = self.batches[step % len(self.batches)]
        return {"inputs": torch.as_tensor(self.X[i]), "targets": torch.as_tensor(self.y[i])}

    def forward_backward(self, P, step):
        """Gradients, and the rank-1 vectors MKOR takes from each layer: a = mean of [input, 1] over the
        rows, g = mean of rows x dLoss/d(output) = column sum of dLoss/d(output)."""
        i = self.batches[step % len(self.batches)]
        X, y, nb = self.X[i], self.y[i], len(i)
        hidden = np.tanh(X @ P["W1"].T + P["b1"])
        logits = hidden @ P["W2"].T + P["b2"]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        probs[np.arange(nb), y] -= 1
        R = probs / nb
        dz1 = (R @ P["W2"]) * (1 - hidden**2)
        grads = {"W1": dz1.T @ X + self.l2 * P["W1"], "b1": dz1.sum(axis=0),
                 "W2": R.T @ hidden + self.l2 * P["W2"], "b2": R.sum(axis=0)}
        ones = np.ones((nb, 1))
        vectors = {1: (np.hstack([X, ones]).mean(axis=0), dz1.sum(axis=0)),
                   2: (np.hstack([hidden, ones]).mean(axis=0), R.sum(axis=0))}
        return grads, vectors

    def init_model_fn(self, rng=0, theta0=None):
        model = torch.nn.Sequential(torch.nn.Linear(self.d, self.h), torch.nn.Tanh(), torch.nn.Linear(self.h, self.k))
        model = model.double()
        with torch.no_grad():
            for name, p in zip(NAMES, (model[0].weight, model[0].bias, model[2].weight, model[2].bias)):
                p.copy_(torch.as_tensor(theta0[name]))
        self.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        self.model_params_types = {}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        self._l2_term = 0.5 * self.l2 * (params[0].weight.pow(2).sum() + params[2].weight.pow(2).sum())
        return params(augmented_and_preprocessed_input_batch["inputs"]), model_state


def initial_point(problem):
    rng = np.random.default_rng(11)
    return {"W1": rng.standard_normal((problem.h, problem.d)), "b1": rng.standard_normal(problem.h),
            "W2": rng.standard_normal((problem.k, problem.h)), "b2": rng.standard_normal(problem.k)}


def run(problem, hp, steps):
    def snapshot(model):
        return {name: p.detach().numpy().copy()
                for name, p in zip(NAMES, (model[0].weight, model[0].bias, model[2].weight, model[2].bias))}

    return step_submission("mkor", hp, problem, steps, initial_point(problem), problem.torch_batch, snapshot)


def reference(problem, hp, steps):
    """MKOR (Mozaffari et al., 2023): every inv_freq steps, Sherman-Morrison updates of the inverse
    Kronecker factors with the EMA gamma L + (1 - gamma) a a^T (a, g the layer's rank-1 vectors), the
    norm-based stabilizer L^-1 <- (1 - zeta) L^-1 + zeta I when max |L^-1| exceeds the threshold;
    every step D = R^-1 [dW db] L^-1 rescaled to the gradient's Frobenius norm, then SGD with momentum
    (coupled weight decay) or Adam on D. A layer whose factor exceeds max_preconditioner_dim keeps its
    raw gradient."""
    P = initial_point(problem)
    gamma, zeta, threshold, clip = hp["stat_decay"], hp["stabilization_factor"], hp["stabilizer_threshold"], hp["clipping_value"]
    layers = {1: ("W1", "b1"), 2: ("W2", "b2")}
    preconditioned = [l for l, (w, _) in layers.items() if max(P[w].shape[1] + 1, P[w].shape[0]) <= hp["max_preconditioner_dim"]]
    inverses = {}
    buffers, m, v = {}, {}, {}
    used = {"sm_updates": 0, "stabilized": 0, "preconditioned_steps": 0}
    out = []
    for t in range(steps):
        lr = hp["learning_rate"] * warmup_cosine(t, round(hp["step_hint_factor"] * problem.step_hint), hp["warmup_factor"])
        grads, vectors = problem.forward_backward(P, t)
        directions = dict(grads)
        for layer in preconditioned:
            if t % hp["inv_freq"] == 0:
                for key, vec in zip(("L", "R"), vectors[layer]):
                    vec = np.clip(vec, -clip, clip)
                    inverse = inverses.get((layer, key), np.eye(len(vec)))
                    u = inverse @ vec
                    inverse = (inverse - (1 - gamma) * np.outer(u, u) / (gamma + (1 - gamma) * vec @ u)) / gamma
                    used["sm_updates"] += 1
                    if np.abs(inverse).max() > threshold:
                        inverse = (1 - zeta) * inverse + zeta * np.eye(len(vec))
                        used["stabilized"] += 1
                    inverses[(layer, key)] = inverse
            w, b = layers[layer]
            M = np.hstack([grads[w], grads[b][:, None]])
            D = inverses[(layer, "R")] @ M @ inverses[(layer, "L")]
            D *= np.linalg.norm(M) / np.linalg.norm(D)
            directions[w], directions[b] = D[:, :-1], D[:, -1]
            used["preconditioned_steps"] += 1
        for name in NAMES:
            d = directions[name] + hp["weight_decay"] * P[name]
            if hp["base_optimizer"] == "sgd":
                buffers[name] = d if name not in buffers else hp["momentum"] * buffers[name] + d
                P[name] = P[name] - lr * buffers[name]
            else:
                b1, b2 = hp["adam_beta1"], hp["adam_beta2"]
                m[name] = b1 * m.get(name, 0) + (1 - b1) * d
                v[name] = b2 * v.get(name, 0) + (1 - b2) * d**2
                P[name] = P[name] - lr / (1 - b1 ** (t + 1)) * m[name] / (np.sqrt(v[name] / (1 - b2 ** (t + 1))) + hp["adam_epsilon"])
        out.append({k: val.copy() for k, val in P.items()})
    return out, used


@pytest.mark.parametrize("base_optimizer, max_dim", [("sgd", 64), ("adam", 64), ("sgd", 4)])
def test_matches_numpy_reference(base_optimizer, max_dim):
    """max_dim 4: the first layer's input factor (4 inputs + bias = 5) is too large, so it takes the
    raw gradient and only the second layer is preconditioned."""
    problem = MLPProblem()
    hp = {"learning_rate": 0.05, "base_optimizer": base_optimizer, "momentum": 0.9, "weight_decay": 1e-3,
          "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "stat_decay": 0.9, "inv_freq": 2,
          "stabilizer_threshold": 1.5, "stabilization_factor": 0.2, "clipping_value": 100.0,
          "max_preconditioner_dim": max_dim, "hybrid_window": 0, "hybrid_threshold": 0.01,
          "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run(problem, hp, 24)
    want, used = reference(problem, hp, 24)
    assert used["sm_updates"] > 0 and used["stabilized"] > 0 and used["preconditioned_steps"] > 0, used
    for step, (a, b) in enumerate(zip(got, want)):
        for name in NAMES:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-7, atol=1e-10, err_msg=f"step {step} {name}")


def test_preconditioning_changes_the_direction():
    """Against plain SGD-momentum on the same problem (same rescaled norm, different direction)."""
    problem = MLPProblem()
    hp = {"learning_rate": 0.05, "inv_freq": 1, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    with_mkor = run(problem, hp, 5)[-1]
    plain = run(problem, {**hp, "max_preconditioner_dim": 1}, 5)[-1]
    assert not np.allclose(with_mkor["W2"], plain["W2"], rtol=1e-3)


def test_tied_and_large_linear_layers_are_not_preconditioned():
    from submissions.mkor.submission import MKOR

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(10, 4)
            self.hidden = torch.nn.Linear(4, 4)
            self.wide = torch.nn.Linear(4, 50)
            self.head = torch.nn.Linear(4, 10, bias=False)
            self.head.weight = self.embedding.weight

    optimizer = MKOR(Tied(), lr=0.1, max_preconditioner_dim=20)
    assert optimizer.preconditioned_layers == ["hidden"]
    assert dict(optimizer.skipped) == {"wide": "factor too large", "head": "weight shared with another module"}


def test_hybrid_switches_to_the_base_optimizer():
    """MKOR-H: once the windowed loss stops decreasing by hybrid_threshold, preconditioning stops."""
    from submissions.mkor.submission import MKOR

    model = torch.nn.Linear(3, 2).double()
    optimizer = MKOR(model, lr=1e-3, hybrid_window=2, hybrid_threshold=0.5)
    x = torch.randn(8, 3, dtype=torch.float64)

    def closure():
        model.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss.detach()

    for _ in range(6):
        optimizer.step(closure)
    assert not optimizer.second_order and optimizer.switched_at == 4


@pytest.mark.parametrize("key, value", [("base_optimizer", "lamb"), ("stat_decay", 1.0), ("inv_freq", 0),
                                        ("stabilization_factor", 0.0)])
def test_bad_hyperparameter_names_the_key(key, value):
    submission = load_submission("mkor")
    hp = Hyperparameters({**submission.default_hyperparameters(), key: value})
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=key) as error:
        submission.module.create_optimizer(model, hp, None)
    if key == "base_optimizer":
        assert "'sgd'" in str(error.value) and "'adam'" in str(error.value)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("mkor", "logreg_wine", TUNED)
    assert record.status == "reached", record.error or record.best_metric
