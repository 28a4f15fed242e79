"""`algoperf.spec` names, backed by timetrial's contract (harness/core/spec.py)."""

from typing import Any, Callable, Dict

from harness.core.spec import (  # noqa: F401  (re-exported for AlgoPerf submissions)
    ForwardPassMode,
    Hyperparameters,
    LossType,
    ParameterType,
    ShapeTuple,
    TrainingCompleteError,
    UpdateReturn,
    Workload,
)

Tensor = Any
ParameterContainer = Any
ParameterTypeTree = Dict[str, ParameterType]
ParameterShapeTree = Dict[str, Any]
ModelAuxiliaryState = Any
OptimizerState = Any
RandomState = Any
Batch = Dict[str, Any]
Steps = int
Seconds = float
Timing = int
ParameterKey = str
Shape = Any
ModelInitState = Any
InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., Batch]
