"""Muon in JAX through AlgoPerf's functional API, built from optax.contrib's Muon pieces: the JAX twin
of the PyTorch `muon` submission (optimlib/muon.py), with its hyperparameter names and warm-up +
cosine schedule over step_hint_factor * step_hint (one multiplier for both learning rates).

Matrices (PyTorch's (out, in) layout):  B <- mu B + G,  U = G + mu B (Nesterov) or B,
O = NS5(U / (||U||_F + 1e-7)),  W <- W - lr (sqrt(max(1, out / in)) O + wd W);  every other
parameter: AdamW at adam_learning_rate with the same decoupled weight decay.

optax.contrib.muon differs from the twin in its momentum: an EMA (1 - mu) G with bias correction,
whose Nesterov form weights G against the history differently for the first ~1 / (1 - mu) steps
(the Frobenius normalisation removes only a common scale), and it reads a matrix as (in, out). So the
muon branch here chains optax.trace (torch's momentum, Nesterov or not) before
optax.contrib.scale_by_muon with beta 0 (its EMA is then the identity: orthogonalisation only, the
twin's eps 1e-7 and quintic coefficients, five steps), then the width scaling sqrt(max(1, out / in)).
Only 1-D and 2-D parameters are supported (every JAX workload's); the twin flattens higher-dimensional
weights, which this refuses.
"""

import jax
import jax.numpy as jnp
import optax
from optax.contrib import MuonDimensionNumbers

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps, schedules

# PyTorch's (out, in): the reduction (input) axis is 1, the output axis 0
TORCH_LAYOUT = MuonDimensionNumbers(reduction_axis=1, output_axis=0)
NS_COEFFICIENTS, NS_STEPS, NS_EPS = (3.4445, -4.7750, 2.0315), 5, 1e-7  # optimlib.newton_schulz's


def _torch_layout(updates):
    """The dimension numbers for each matrix of the muon branch; optax.partition hands that branch the
    other parameters as MaskedNode leaves, which stay masked."""
    def layout(x):
        return x if isinstance(x, optax.MaskedNode) else TORCH_LAYOUT

    return jax.tree.map(layout, updates, is_leaf=lambda x: isinstance(x, optax.MaskedNode))


def scale_by_width() -> optax.GradientTransformation:
    """The reference's sqrt(max(1, out / in)) for an (out, in) matrix (optax's width scaling, which
    optax.contrib does not export)."""
    def update_fn(updates, state, params=None):
        def scale(u):
            return u if isinstance(u, optax.MaskedNode) else u * jnp.sqrt(max(1.0, u.shape[0] / u.shape[1]))

        return jax.tree.map(scale, updates, is_leaf=lambda x: isinstance(x, optax.MaskedNode)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def _labels(params):
    def label(x):
        if x.ndim > 2:
            raise ValueError(f"muon_jax: a {x.ndim}-D parameter; only 1-D and 2-D are supported")
        return "muon" if x.ndim == 2 else "adam"

    return jax.tree.map(label, params)


def muon(learning_rate, adam_learning_rate, momentum, nesterov, weight_decay, adam_b1, adam_b2, adam_eps):
    matrix_step = optax.chain(
        optax.trace(decay=momentum, nesterov=nesterov),
        optax.contrib.scale_by_muon(ns_coeffs=NS_COEFFICIENTS, ns_steps=NS_STEPS, beta=0.0, eps=NS_EPS,
                                    nesterov=False, weight_dimension_numbers=_torch_layout),
        scale_by_width(),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(learning_rate))
    other_step = optax.adamw(adam_learning_rate, b1=adam_b1, b2=adam_b2, eps=adam_eps, weight_decay=weight_decay)
    return optax.partition({"muon": matrix_step, "adam": other_step}, _labels)


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    return optax.inject_hyperparams(muon, static_args=("nesterov",))(
        learning_rate=hyperparameters["learning_rate"], adam_learning_rate=hyperparameters["adam_learning_rate"],
        momentum=1.0 - hyperparameters["one_minus_momentum"], nesterov=bool(hyperparameters["nesterov"]),
        weight_decay=hyperparameters["weight_decay"], adam_b1=1.0 - hyperparameters["adam_one_minus_beta1"],
        adam_b2=hyperparameters["adam_beta2"], adam_eps=hyperparameters["adam_epsilon"])




def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"opt_state": _optimizer(hyperparameters).init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters,
                  batch, loss_type, optimizer_state, eval_results, global_step, rng, train_state=None):
    multiplier = schedules.warmup_cosine(global_step, round(hyperparameters.step_hint_factor * workload.step_hint),
                                         hyperparameters.warmup_factor)
    return optax_steps.update(workload, _optimizer, ForwardPassMode.TRAIN, hyperparameters, current_param_container,
                              optimizer_state, model_state, batch, global_step, rng,
                              learning_rate=hyperparameters.learning_rate * multiplier,
                              adam_learning_rate=hyperparameters.adam_learning_rate * multiplier)
