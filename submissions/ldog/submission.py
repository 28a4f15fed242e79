"""L-DoG (Ivgi et al., DoG is SGD's Best Friend): DoG with a separate step size per parameter
tensor (layer-wise distances and gradient sums), evaluated at the polynomial-decay average of the
iterates. The optimizer is optimlib/dog.py's, shared with `dog`."""

from optimlib import dog

prepare_for_eval = dog.prepare_for_eval


def create_optimizer(params, hyperparameters, workload):
    return dog.create_dog(params, hyperparameters, layerwise=True)
