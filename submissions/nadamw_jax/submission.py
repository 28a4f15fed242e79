"""NAdamW in JAX through AlgoPerf's functional API, in the form of AlgoPerf's JAX baseline: a custom
optax transformation `scale_by_nadam` chained with decoupled weight decay and a learning rate that is
injected each step from the warm-up + cosine schedule of the PyTorch `nadamw` submission. The
transformation and its update rule are in optimlib/optax_nadam.py (shared with `algoperf_nadamw_jax`).
"""

from harness.core.spec import ForwardPassMode
from optimlib import optax_nadam, optax_steps

init_optimizer_state, update_params = optax_steps.warmup_cosine_functions(optax_nadam.nadamw_from_hyperparameters,
                                                                          ForwardPassMode.TRAIN)
