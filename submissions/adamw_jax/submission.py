"""AdamW in JAX through AlgoPerf's functional API: `optax.adamw` with the learning rate injected each
step from the same warm-up + cosine schedule as the PyTorch `adamw` submission, and one jitted
train step (forward, backward, update) per call of `update_params`."""

import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.adamw)(
        learning_rate=hyperparameters["learning_rate"],
        b1=1.0 - hyperparameters["one_minus_beta1"],
        b2=hyperparameters["beta2"],
        eps=hyperparameters["epsilon"],
        weight_decay=hyperparameters["weight_decay"],
    )




init_optimizer_state, update_params = optax_steps.warmup_cosine_functions(_optimizer, ForwardPassMode.TRAIN)

