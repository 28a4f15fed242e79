import json
from pathlib import Path

import numpy as np
import pytest
import torch
from submission_testing import LogisticProblem, step_submission

from optimlib.schedules import warmup_cosine
from harness.core.spec import Hyperparameters, LossType
from harness.core.submission import load_submission

TUNED = json.loads((Path(__file__).parents[2] / "submissions/lanton/metadata.json").read_text())["tuned_logreg"]
NS = ((3.4445, -4.7750, 2.0315),) * 5


class Blocks(torch.nn.Module):
    """logits = W1 x[:d1] + W2 x[d1:] + b + E1[c1] + E2[c2]: two matrices, two embeddings, a bias."""

    def __init__(self, d1, d2, k, v1, v2):
        super().__init__()
        self.lin1 = torch.nn.Linear(d1, k, bias=False)
        self.lin2 = torch.nn.Linear(d2, k)
        self.emb1 = torch.nn.Embedding(v1, k)
        self.emb2 = torch.nn.Embedding(v2, k)
        self.d1 = d1

    def forward(self, batch):
        x = batch["inputs"]
        return (self.lin1(x[:, :self.d1]) + self.lin2(x[:, self.d1:]) + self.emb1(batch["c1"])
                + self.emb2(batch["c2"]))


class BlockProblem(LogisticProblem):
    """Softmax regression over dense features split into two blocks plus two categorical features,
    mini-batches cycled step by step (so the layer noise estimates see real sampling noise)."""

    loss_type = LossType.SOFTMAX_CROSS_ENTROPY

    def __init__(self, n=48, d1=3, d2=5, k=3, v1=4, v2=6, l2=1e-2, batch=16, seed=0):
        super().__init__(n=n, d=d1 + d2, l2=l2, seed=seed, name="reference_blocks")
        rng = np.random.default_rng(seed + 7)
        self.d1, self.d2, self.k, self.v1, self.v2 = d1, d2, k, v1, v2
        self.c1, self.c2 = rng.integers(0, v1, n), rng.integers(0, v2, n)
        self.y = (self.X @ rng.standard_normal((d1 + d2, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
        self.batches = [np.arange(i, i + batch) for i in range(0, n, batch)]

    def torch_batch(self, step):
        i = self.batches[step % len(self.batches)]
        return {"inputs": torch.as_tensor(self.X[i]), "c1": torch.as_tensor(self.c1[i]),
                "c2": torch.as_tensor(self.c2[i]), "targets": torch.as_tensor(self.y[i])}

    def grads(self, P, step):
        i = self.batches[step % len(self.batches)]
        X, y = self.X[i], self.y[i]
        logits = X[:, :self.d1] @ P["W1"].T + X[:, self.d1:] @ P["W2"].T + P["b"] + P["E1"][self.c1[i]] + P["E2"][self.c2[i]]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        probs[np.arange(len(i)), y] -= 1
        R = probs / len(i)
        E1, E2 = np.zeros_like(P["E1"]), np.zeros_like(P["E2"])
        np.add.at(E1, self.c1[i], R)
        np.add.at(E2, self.c2[i], R)
        return {"W1": R.T @ X[:, :self.d1] + self.l2 * P["W1"], "W2": R.T @ X[:, self.d1:] + self.l2 * P["W2"],
                "b": R.sum(axis=0), "E1": E1, "E2": E2}

    def init_model_fn(self, rng=0, theta0=None):
        model = Blocks(self.d1, self.d2, self.k, self.v1, self.v2).double()
        with torch.no_grad():
            for name, value in theta0.items():
                {"W1": model.lin1.weight, "W2": model.lin2.weight, "b": model.lin2.bias, "E1": model.emb1.weight,
                 "E2": model.emb2.weight}[name].copy_(torch.as_tensor(value))
        self.param_shapes = {n: p.shape for n, p in model.named_parameters()}
        self.model_params_types = {}
        return model, None

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        self._l2_term = 0.5 * self.l2 * (params.lin1.weight.pow(2).sum() + params.lin2.weight.pow(2).sum())
        return params(augmented_and_preprocessed_input_batch), model_state


def initial_point(problem):
    rng = np.random.default_rng(3)
    return {"W1": rng.standard_normal((problem.k, problem.d1)), "W2": rng.standard_normal((problem.k, problem.d2)),
            "b": rng.standard_normal(problem.k), "E1": rng.standard_normal((problem.v1, problem.k)),
            "E2": rng.standard_normal((problem.v2, problem.k))}


def run(problem, hp, steps):
    """The submission through load_submission -> init_optimizer_state / update_params (the short path)."""
    def snapshot(model):
        return {"W1": model.lin1.weight.detach().numpy().copy(), "W2": model.lin2.weight.detach().numpy().copy(),
                "b": model.lin2.bias.detach().numpy().copy(), "E1": model.emb1.weight.detach().numpy().copy(),
                "E2": model.emb2.weight.detach().numpy().copy()}

    return step_submission("lanton", hp, problem, steps, initial_point(problem), problem.torch_batch, snapshot)


def newton_schulz(G):
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G
    X = X / (np.linalg.norm(X) + 1e-7)
    for a, b, c in NS:
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def reference(problem, hp, steps):
    """LANTON: per group (matrices: RMS->RMS norm; embeddings: l1->l_inf norm), EMA momentum, EMA of the
    squared dual norm of consecutive gradient differences, layer rate = group rate x sqrt(min H / H_l),
    LMO step with decoupled weight decay; the bias by AdamW."""
    P = initial_point(problem)
    groups = {"matrix": ["W1", "W2"], "embedding": ["E1", "E2"]}
    base_lr = {"matrix": hp["learning_rate"], "embedding": hp["embedding_learning_rate"]}
    b1, b2, eps, wd = 1 - hp["one_minus_beta1"], hp["beta2"], hp["noise_epsilon"], hp["weight_decay"]
    a1, a2 = 1 - hp["adam_one_minus_beta1"], hp["adam_beta2"]
    B = {k: np.zeros_like(v) for k, v in P.items()}
    H, previous = {}, {}
    m, v = np.zeros(problem.k), np.zeros(problem.k)
    out, scales_seen = [], []
    for t in range(steps):
        mult = warmup_cosine(t, round(hp["step_hint_factor"] * problem.step_hint), hp["warmup_factor"])
        G = problem.grads(P, t)
        for geometry, names in groups.items():
            for name in names:
                B[name] = b1 * B[name] + (1 - b1) * G[name]
                if name in previous:
                    D = G[name] - previous[name]
                    if geometry == "matrix":
                        d_out, d_in = D.shape
                        norm = np.sqrt(d_in / d_out) * np.linalg.svd(D, compute_uv=False).sum()
                    else:
                        norm = np.abs(D).sum()
                    H[name] = b2 * H.get(name, 0.0) + (1 - b2) * norm**2
                previous[name] = G[name].copy()
            if all(name in H for name in names):
                lowest = min(H[name] for name in names)
                scale = {name: np.sqrt((lowest + eps) / (H[name] + eps)) for name in names}
                scales_seen.extend(scale.values())
            else:
                scale = {name: 1.0 for name in names}
            for name in names:
                lr = base_lr[geometry] * mult * scale[name]
                if geometry == "matrix":
                    d_out, d_in = B[name].shape
                    direction = np.sqrt(d_out / d_in) * newton_schulz(B[name])
                else:
                    direction = np.sign(B[name])
                P[name] = P[name] * (1 - lr * wd) - lr * direction
        lr = hp["adam_learning_rate"] * mult
        m = a1 * m + (1 - a1) * G["b"]
        v = a2 * v + (1 - a2) * G["b"] ** 2
        P["b"] = P["b"] * (1 - lr * wd) - lr * (m / (1 - a1 ** (t + 1))) / (np.sqrt(v / (1 - a2 ** (t + 1))) + hp["adam_epsilon"])
        out.append({k: val.copy() for k, val in P.items()})
    return out, scales_seen


@pytest.mark.parametrize("beta2", [0.99, 0.5])
def test_matches_numpy_reference(beta2):
    problem = BlockProblem()
    hp = {"learning_rate": 0.05, "embedding_learning_rate": 0.01, "adam_learning_rate": 0.02, "one_minus_beta1": 0.1,
          "beta2": beta2, "noise_epsilon": 1e-12, "weight_decay": 0.05, "adam_one_minus_beta1": 0.1,
          "adam_beta2": 0.95, "adam_epsilon": 1e-10, "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run(problem, hp, 20)
    want, scales = reference(problem, hp, 20)
    # the layerwise rates really differ (a noisier layer of a group moves slower than the group rate)
    assert min(scales) < 0.9 and max(scales) == 1.0, (min(scales), max(scales))
    for step, (a, b) in enumerate(zip(got, want)):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-7, atol=1e-10, err_msg=f"step {step} {name}")


def test_noisier_layer_gets_smaller_rate():
    """Two matrices of one group: one sees a constant gradient, the other one whose sign flips every
    step. After a few steps the second's rate is a small fraction of the group rate, the first's is it."""
    from submissions.lanton.submission import Lanton

    model = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False)).double()
    optimizer = Lanton(model, lr=0.01, beta2=0.9)
    steady = torch.randn(4, 4, dtype=torch.float64)
    for t in range(6):
        def closure():
            model[0].weight.grad = steady + 0.01 * t
            model[1].weight.grad = steady * (-1) ** t
            return torch.tensor(0.0)
        optimizer.step(closure)
    quiet, noisy = (optimizer.state[p]["layer_lr_scale"] for p in (model[0].weight, model[1].weight))
    assert quiet == pytest.approx(1.0) and noisy < 0.02, (quiet, noisy)


def test_groups_follow_the_geometry():
    from submissions.lanton.submission import Lanton

    model = Blocks(2, 3, 4, 5, 6)
    groups = {g["geometry"]: g["params"] for g in Lanton(model).param_groups}
    assert groups["embedding"] == [model.emb1.weight, model.emb2.weight]
    assert groups["matrix"] == [model.lin1.weight, model.lin2.weight]
    assert groups["vector"] == [model.lin2.bias]


@pytest.mark.parametrize("key, value", [("beta2", 1.0), ("one_minus_beta1", 1.5), ("learning_rate", 0.0),
                                        ("noise_epsilon", 0.0)])
def test_bad_hyperparameter_names_the_key(key, value):
    submission = load_submission("lanton")
    hp = Hyperparameters({**submission.default_hyperparameters(), key: value})
    model, _ = BlockProblem().init_model_fn(0, {})
    expected = "beta1" if key == "one_minus_beta1" else key
    with pytest.raises(ValueError, match=expected):
        submission.module.create_optimizer(model, hp, None)


@pytest.mark.slow
def test_reaches_target_on_logreg(cpu_trial):
    record = cpu_trial("lanton", "logreg_wine", TUNED)
    assert record.status == "reached", record.error or record.best_metric
