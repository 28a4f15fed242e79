"""SGD with heavy-ball momentum, or Nesterov momentum when `nesterov` is true, in JAX through AlgoPerf's
functional API: the JAX twin of both PyTorch `sgd_momentum` (nesterov false) and `sgd_nesterov` (true).

torch.optim.SGD's update, as an optax chain (the learning rate injected each step from the same
warm-up + cosine schedule):
    g <- g + wd p                          L2 weight decay, coupled (optax.add_decayed_weights first)
    b <- mu b + g                          no dampening; the first step's buffer is g (optax.trace from 0)
    d <- g + mu b if nesterov else b
    p <- p - lr d                          lr outside the buffer, as torch (a schedule change is immediate)
"""

import optax

from harness.core.spec import ForwardPassMode
from optimlib import optax_steps


def sgd_momentum(learning_rate, momentum, nesterov, weight_decay) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.trace(decay=momentum, nesterov=nesterov),
                       optax.scale_by_learning_rate(learning_rate))


def _optimizer(hyperparameters) -> optax.GradientTransformation:
    # `nesterov` is a Python bool that picks the code path, so it is static, not an injected array
    return optax.inject_hyperparams(sgd_momentum, static_args=("nesterov",))(
        learning_rate=hyperparameters["learning_rate"], momentum=1.0 - hyperparameters["one_minus_beta1"],
        nesterov=bool(hyperparameters["nesterov"]), weight_decay=hyperparameters["weight_decay"])




init_optimizer_state, update_params = optax_steps.warmup_cosine_functions(_optimizer, ForwardPassMode.TRAIN)
