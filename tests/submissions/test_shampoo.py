import numpy as np
import pytest

from harness.core.submission import load_submission
from submission_testing import run_submission
from submissions.shampoo.submission import blocks_of, merged_shape


def inverse_root(A, root, eps):
    """(A + eps I)^(-1/root) through the eigendecomposition (A symmetric PSD)."""
    eigenvalues, Q = np.linalg.eigh(A)
    return Q @ np.diag((np.maximum(eigenvalues, 0) + eps) ** (-1.0 / root)) @ Q.T


def split_blocks(X, size):
    """X cut into blocks of at most `size` along each dimension, row-major over the blocks."""
    blocks = [X]
    for dim in range(X.ndim):
        blocks = [piece for block in blocks
                  for piece in np.split(block, range(size, block.shape[dim], size), axis=dim)]
    return blocks


def join_blocks(blocks, shape, size):
    """The inverse of split_blocks for a tensor of `shape`."""
    out, position = np.empty(shape), [0]

    def fill(region):
        dim = len(region)
        if dim == len(shape):
            index = tuple(slice(start, stop) for start, stop in region)
            out[index] = blocks[position[0]]
            position[0] += 1
            return
        for start in range(0, shape[dim], size):
            fill(region + [(start, min(start + size, shape[dim]))])

    fill([])
    return out


def precondition(M, roots):
    """M x_1 R_1 ... x_k R_k: each side multiplied by its (symmetric) root."""
    for dim, R in enumerate(roots):
        M = np.moveaxis(np.tensordot(R, np.moveaxis(M, dim, 0), axes=(1, 0)), 0, dim)
    return M


def shampoo_reference(problem, hp, theta0, steps, lr_multiplier, shapes):
    """Shampoo with Adam grafting (Distributed Shampoo), each parameter reshaped to `shapes[i]` (the
    merged shape) and cut into blocks of at most max_preconditioner_dim per side; per block EMA
    Kronecker factors, one per side, roots F^-1/(2k) refreshed every N steps, direction rescaled to the
    norm of Adam's M / (sqrt(V) + eps) (the same M, Nesterov when asked), Adam's step before the first
    refresh, decoupled weight decay."""
    b1, b2, wd, N = 1 - hp["one_minus_beta1"], hp["beta2"], hp["weight_decay"], hp["precondition_frequency"]
    b3 = b1 * b1 if hp["nesterov"] else b1
    size = hp["max_preconditioner_dim"]
    horizon = round(hp["step_hint_factor"] * problem.step_hint)
    x = theta0.copy()
    params = [{"shape": shape, "blocks": None} for shape in shapes]
    used = {"graft_only": 0, "preconditioned": 0, "refresh": 0}
    out = []
    for t in range(1, steps + 1):
        lr = hp["learning_rate"] * lr_multiplier(t - 1, horizon, hp["warmup_factor"])
        new = []
        for param, G, P in zip(params, problem.split(problem.loss_and_grad(x)[1]), problem.split(x)):
            grad_blocks = split_blocks(G.reshape(param["shape"]), size)
            if param["blocks"] is None:
                param["blocks"] = [{"M": np.zeros(g.shape), "V": np.zeros(g.shape), "roots": None,
                                    "factors": [np.zeros((n, n)) for n in g.shape]} for g in grad_blocks]
            directions = []
            for block, g in zip(param["blocks"], grad_blocks):
                momentum = (b3 * block["M"] + (1 - b3) * g) / (1 - b3 * b1 ** (t - 1))
                block["M"] = b1 * block["M"] + (1 - b1) * g
                block["V"] = b2 * block["V"] + (1 - b2) * g**2
                for dim in range(g.ndim):
                    other = [d for d in range(g.ndim) if d != dim]
                    outer = np.tensordot(g, g, axes=(other, other))
                    block["factors"][dim] = b2 * block["factors"][dim] + (1 - b2) * outer
                if t % N == 0:
                    block["roots"] = [inverse_root(F / (1 - b2**t), 2 * g.ndim, hp["epsilon"])
                                      for F in block["factors"]]
                    used["refresh"] += 1
                graft = momentum / (np.sqrt(block["V"] / (1 - b2**t)) + hp["graft_epsilon"])
                if block["roots"] is None:
                    directions.append(graft)
                    used["graft_only"] += 1
                else:
                    direction = precondition(momentum, block["roots"])
                    directions.append(direction * np.linalg.norm(graft) / np.linalg.norm(direction))
                    used["preconditioned"] += 1
            direction = join_blocks(directions, param["shape"], size).reshape(P.shape)
            new.append(P * (1 - lr * wd) - lr * direction)
        x = np.concatenate([new[0].ravel(), new[1]])
        out.append(x)
    return out, used


CASES = {
    # the 3 x 4 weight merged into one 12-vector (a full-matrix preconditioner, root -1/2): the default
    "merged": {"target_parameter_dimensionality": 1, "max_preconditioner_dim": 1024, "shapes": [(12,), (3,)]},
    # no merging: L^-1/4 G R^-1/4 with 3 x 3 and 4 x 4 factors
    "matrix": {"target_parameter_dimensionality": 2, "max_preconditioner_dim": 1024, "shapes": [(3, 4), (3,)]},
    # max dimension 3: the weight is not merged (12 > 3) but cut into (3, 3) and (3, 1) blocks; the bias
    # stays whole
    "blocked": {"target_parameter_dimensionality": 1, "max_preconditioner_dim": 3, "shapes": [(3, 4), (3,)]},
}


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_shampoo_matches_reference(case, nesterov, softmax_problem, lr_multiplier):
    """A 3 x 4 weight and a 3-vector bias, merged, unmerged and blocked."""
    problem = softmax_problem(k=3, d=4)
    theta0 = np.random.default_rng(14).standard_normal(problem.k * (problem.d + 1))
    setting = CASES[case]
    hp = {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.95, "nesterov": nesterov, "epsilon": 1e-6,
          "graft_epsilon": 1e-8, "weight_decay": 1e-2, "precondition_frequency": 5,
          "max_preconditioner_dim": setting["max_preconditioner_dim"],
          "target_parameter_dimensionality": setting["target_parameter_dimensionality"],
          "warmup_factor": 0.1, "step_hint_factor": 0.3}
    got = run_submission("shampoo", hp, problem, 25, theta0)
    want, used = shampoo_reference(problem, hp, theta0, 25, lr_multiplier, setting["shapes"])
    assert used["graft_only"] > 0 and used["preconditioned"] > 0 and used["refresh"] >= 8, used
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize(("shape", "max_dim", "target", "merged"), [
    ((1, 2, 5, 1), 10, 1, (10,)),             # size-1 dimensions squeezed, the rest merged up to the threshold
    ((1, 2, 5, 1), 1, 1, (2, 5)),             # nothing merges above the threshold
    ((32, 3, 64, 64), 8192, 1, (96, 4096)),   # a conv-like shape: merged from the back while <= 8192
    ((32, 3, 64, 64), 10**6, 2, (32, 12288)),  # stops at two dimensions
    ((64, 64, 3, 3), 1024, 1, (64, 576)),     # a 3 x 3 conv kernel at the default max dimension
    ((8, 6), 1024, 1, (48,)),                 # a small matrix becomes one vector
    ((1, 1), 1024, 1, (1,)),
])
def test_merged_shape_follows_distributed_shampoo(shape, max_dim, target, merged):
    assert merged_shape(shape, max_dim, target) == merged


def test_blocks_cut_every_long_dimension_and_stay_views():
    import torch

    X = torch.arange(5 * 7, dtype=torch.float64).reshape(5, 7)
    blocks = blocks_of(X, 3)
    assert [tuple(b.shape) for b in blocks] == [(3, 3), (3, 3), (3, 1), (2, 3), (2, 3), (2, 1)]
    blocks[4].zero_()  # views: writing a block writes the tensor
    assert float(X[3:5, 3:6].abs().sum()) == 0.0


def test_shampoo_reaches_logreg_target(reach_target):
    reach_target("logreg_breast_cancer", "shampoo", load_submission("shampoo").metadata["tuned_logreg"])
