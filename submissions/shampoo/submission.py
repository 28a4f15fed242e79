"""Shampoo in the Distributed Shampoo design (Shi et al., 2023; the AlgoPerf v0.5 external-tuning
winner), the method analysed in Morwani et al., "A New Perspective on Shampoo's Preconditioner".

Each parameter is first reshaped and cut as Distributed Shampoo does by default:
  merge:  dimensions of size 1 are squeezed out, then neighbouring dimensions are merged, from the
          last one backwards, while their product stays <= max_preconditioner_dim and more than
          target_parameter_dimensionality dimensions would remain (default 1: a small matrix becomes
          one vector with a full-matrix preconditioner; a conv kernel (64, 64, 3, 3) becomes (64, 576));
  block:  every dimension longer than max_preconditioner_dim is cut into blocks of that length.
Every block is then its own Shampoo problem, G its gradient block of order k (every side <= max dim):
  m = b1 m + (1-b1) G;  direction M = m_t / (1 - b1^t), or with `nesterov`
      M = (b3 m_{t-1} + (1-b3) G) / (1 - b3 b1^(t-1)), b3 = b1^2       (Distributed Shampoo's beta3 form of NAdam)
  F_i = b2 F_i + (1-b2) G_(i) G_(i)^T for each side i                  (Kronecker factors, bias-corrected)
  v = b2 v + (1-b2) G^2                                                (Adam grafting, bias-corrected)
  every N steps: F_i^-1/(2k) <- eigendecomposition roots of (F_i + eps I)
  graft = M / (sqrt(v) + graft_eps)
  P = M x_1 F_1^-1/(2k) ... x_k F_k^-1/(2k), rescaled to the norm of graft    (per block: Shampoo's
                                                                               direction, Adam's size)
  W <- W (1 - lr wd) - lr P
A 2-D block gets L^-1/4 M R^-1/4, a 1-D block L^-1/2 M. Until the first refresh (step N) the step
is the graft alone. The grafted Adam shares the (Nesterov) first moment, as in Distributed Shampoo.
"""

import torch

from optimlib import schedules
from optimlib.per_parameter import PerParameterOptimizer


def merged_shape(shape, max_preconditioner_dim, target_parameter_dimensionality: int = 1) -> tuple[int, ...]:
    """Distributed Shampoo's merging of small dimensions: drop the size-1 dimensions (all ones -> (1,)),
    then walk from the last dimension to the first, folding the next dimension into the current one
    while their product is <= max_preconditioner_dim and the shape would still have more than
    target_parameter_dimensionality dimensions without the fold."""
    if 0 in shape:
        return (0,)
    remaining = [size for size in reversed(tuple(shape)) if size != 1] or [1]
    merged = [remaining[0]]
    for position, size in enumerate(remaining[1:], start=1):
        dimensions_without_fold = len(merged) + len(remaining) - position
        if dimensions_without_fold > target_parameter_dimensionality and merged[-1] * size <= max_preconditioner_dim:
            merged[-1] *= size
        else:
            merged.append(size)
    return tuple(reversed(merged))


def blocks_of(tensor: torch.Tensor, block_size) -> list[torch.Tensor]:
    """Views of `tensor` cut into blocks of at most `block_size` along every dimension (row-major order
    of the blocks); a dimension no longer than block_size stays whole."""
    blocks = [tensor]
    for dim in range(tensor.dim()):
        blocks = [piece for block in blocks
                  for piece in torch.split(block, int(min(block_size, block.shape[dim])), dim)]
    return blocks


def matrix_inverse_root(factor: torch.Tensor, root: int, eps: float) -> torch.Tensor:
    """(factor + eps I)^(-1/root) of a symmetric PSD matrix, in float64 through its eigenbasis."""
    eigenvalues, eigenvectors = torch.linalg.eigh(factor.double())
    powered = (eigenvalues.clamp_min(0.0) + eps).pow(-1.0 / root)
    return ((eigenvectors * powered) @ eigenvectors.mT).to(factor.dtype)


class Shampoo(PerParameterOptimizer):
    def __init__(self, params, lr: float, betas=(0.933, 0.9955), epsilon: float = 1e-8, graft_epsilon: float = 1e-8,
                 weight_decay: float = 0.0, precondition_frequency: int = 100, max_preconditioner_dim: int = 1024,
                 target_parameter_dimensionality: int = 1, nesterov: bool = False):
        if (lr <= 0 or epsilon <= 0 or weight_decay < 0 or precondition_frequency < 1 or max_preconditioner_dim < 1
                or target_parameter_dimensionality < 1 or not all(0 <= b < 1 for b in betas)):
            raise ValueError(f"Shampoo: invalid lr={lr}, betas={betas}, epsilon={epsilon}, weight_decay={weight_decay}, "
                             f"precondition_frequency={precondition_frequency}, max_preconditioner_dim="
                             f"{max_preconditioner_dim}, target_parameter_dimensionality="
                             f"{target_parameter_dimensionality} (valid: frequency, dims >= 1)")
        super().__init__(params, {"lr": lr, "betas": betas, "epsilon": epsilon, "graft_epsilon": graft_epsilon,
                                  "weight_decay": weight_decay, "precondition_frequency": precondition_frequency,
                                  "max_preconditioner_dim": max_preconditioner_dim,
                                  "target_parameter_dimensionality": target_parameter_dimensionality,
                                  "nesterov": nesterov})

    def update_parameter(self, p, grad, state, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.sub_(self._direction(p, group), alpha=group["lr"])

    def _direction(self, p, group):
        state = self.state[p]
        if not state:
            state.update(step=0, shape=merged_shape(p.shape, group["max_preconditioner_dim"],
                                                     group["target_parameter_dimensionality"]))
        state["step"] += 1
        grad_blocks = blocks_of(p.grad.reshape(state["shape"]), group["max_preconditioner_dim"])
        if "blocks" not in state:
            state["blocks"] = [self._new_block_state(block) for block in grad_blocks]
        direction = torch.empty(state["shape"], dtype=p.dtype, device=p.device)
        for out, grad, block_state in zip(blocks_of(direction, group["max_preconditioner_dim"]), grad_blocks,
                                          state["blocks"]):
            out.copy_(self._block_direction(grad, block_state, group, state["step"]))
        return direction.reshape(p.shape)

    @staticmethod
    def _new_block_state(grad: torch.Tensor) -> dict:
        return {"filtered_grad": torch.zeros_like(grad), "graft_sq": torch.zeros_like(grad),
                "factors": [torch.zeros(n, n, dtype=grad.dtype, device=grad.device) for n in grad.shape], "roots": None}

    def _block_direction(self, grad, state, group, t):
        beta1, beta2 = group["betas"]
        beta3 = beta1 * beta1 if group["nesterov"] else beta1
        filtered = state["filtered_grad"]
        if group["nesterov"]:
            momentum = (filtered * beta3 + grad * (1 - beta3)) / (1 - beta3 * beta1 ** (t - 1))
            filtered.mul_(beta1).add_(grad, alpha=1 - beta1)
        else:
            momentum = filtered.mul_(beta1).add_(grad, alpha=1 - beta1) / (1 - beta1**t)
        state["graft_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        for dim, factor in enumerate(state["factors"]):
            other = [d for d in range(grad.dim()) if d != dim]
            factor.mul_(beta2).add_(torch.tensordot(grad, grad, dims=(other, other)), alpha=1 - beta2)
        if t % group["precondition_frequency"] == 0:
            state["roots"] = [matrix_inverse_root(factor / (1 - beta2**t), 2 * grad.dim(), group["epsilon"])
                              for factor in state["factors"]]
        graft = momentum / (state["graft_sq"] / (1 - beta2**t)).sqrt().add_(group["graft_epsilon"])
        if state["roots"] is None:
            return graft
        # contracting dimension 0 with each side's root in turn moves it to the end: after all k
        # contractions the dimensions are back in order (the roots are symmetric)
        preconditioned = momentum
        for root in state["roots"]:
            preconditioned = torch.tensordot(preconditioned, root, dims=([0], [0]))
        scale = torch.linalg.vector_norm(graft) / torch.linalg.vector_norm(preconditioned).clamp_min(1e-30)
        return preconditioned * scale


def create_optimizer(params, hyperparameters, workload):
    return Shampoo(params.parameters(), lr=hyperparameters.learning_rate,
                   betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
                   epsilon=hyperparameters.epsilon, graft_epsilon=hyperparameters.graft_epsilon,
                   weight_decay=hyperparameters.weight_decay,
                   precondition_frequency=int(hyperparameters.precondition_frequency),
                   max_preconditioner_dim=int(hyperparameters.max_preconditioner_dim),
                   target_parameter_dimensionality=int(hyperparameters.target_parameter_dimensionality),
                   nesterov=bool(hyperparameters.nesterov))


def schedule(step, step_hint, hyperparameters):
    return schedules.warmup_cosine(step, round(hyperparameters.step_hint_factor * step_hint),
                                   hyperparameters.warmup_factor)
