"""DoG (Ivgi et al., DoG is SGD's Best Friend): SGD with the parameter-free step size
rbar_t / sqrt(sum ||g||^2), one for the whole model, evaluated at the polynomial-decay average of
the iterates. The optimizer is optimlib/dog.py's, shared with `ldog`."""

from optimlib import dog

prepare_for_eval = dog.prepare_for_eval


def create_optimizer(params, hyperparameters, workload):
    return dog.create_dog(params, hyperparameters, layerwise=False)
