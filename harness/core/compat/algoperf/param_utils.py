"""`algoperf.param_utils` for PyTorch submissions: shapes and kinds of a torch model's parameters."""

from typing import Dict

from torch import nn

from harness.core.spec import ParameterType, ShapeTuple, parameter_type


def pytorch_param_shapes(model: nn.Module) -> Dict[str, ShapeTuple]:
    return {name: ShapeTuple(param.shape) for name, param in model.named_parameters()}


def pytorch_param_types(param_shapes: Dict[str, ShapeTuple]) -> Dict[str, ParameterType]:
    """Kinds guessed from the parameters' names and shapes, as AlgoPerf's own does (the workloads hand
    submissions `workload.model_params_types`, typed from the model's modules, which is better)."""
    return {name: parameter_type(name, shape.shape_tuple) for name, shape in param_shapes.items()}
