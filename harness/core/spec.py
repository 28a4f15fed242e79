"""The contract between the runner, workloads and submissions.

Names and meanings follow AlgoPerf (`algoperf.spec`) so that AlgoPerf PyTorch submissions run
unchanged; `harness/core/compat/algoperf/spec.py` re-exports these for them.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from typing import Any, Callable, Iterator, Mapping

import torch

from harness.core import flops, precision
from harness.core.precision import PrecisionPolicy


#: the environment variable naming the device a trial runs on: the runner sets it before it loads the
#: submission, for `algoperf.pytorch_utils.pytorch_setup()`, which AlgoPerf submissions call on import
TRIAL_DEVICE_ENV = "TIMETRIAL_DEVICE"


class LossType(enum.Enum):
    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12  # fused query/key/value projections
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter's shape as AlgoPerf hands it to submissions (`workload.param_shapes` values): a leaf that
    pytree utilities do not descend into, with the shape in `.shape_tuple`."""

    def __init__(self, shape_tuple: tuple[int, ...]):
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


class TrainingCompleteError(Exception):
    """A submission raises this from `update_params` to end training early."""


class UnsupportedWorkloadError(Exception):
    """A submission raises this (or declares it in metadata) for a workload it cannot train."""


class Hyperparameters(Mapping[str, Any]):
    """Read-only hyperparameters with attribute access, like AlgoPerf's namedtuple.

    A missing name raises AttributeError, so AlgoPerf's `hasattr(hyperparameters, 'grad_clip')`
    keeps its meaning.
    """

    def __init__(self, values: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_values", dict(values or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"the submission read hyperparameter {name!r}, which its search space and defaults do not define "
                f"(defined: {sorted(self._values) or 'none'})"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("hyperparameters are read-only")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __repr__(self) -> str:
        return f"Hyperparameters({self._values!r})"

    def _asdict(self) -> dict[str, Any]:
        return dict(self._values)

    def __reduce__(self):
        # pickle would look up __setstate__ through __getattr__ before _values exists
        return (Hyperparameters, (self._values,))


class MetricsLogger:
    """What `workload.metrics_logger` offers submissions: training scalars, written beside evals.

    Values may be tensors: they are read when the rows are taken (at evaluation, off the clock), so
    logging every step costs no device synchronisation.
    """

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def append_scalar_metrics(self, metrics: Mapping[str, Any], global_step: int, preface: str = "") -> None:
        self._rows.append({"step": int(global_step), **{preface + k: v for k, v in metrics.items()}})

    def take_rows(self) -> list[dict[str, float]]:
        """The rows logged since the last call, values as floats."""
        rows, self._rows = self._rows, []
        return [{k: v if k == "step" else float(v) for k, v in row.items()} for row in rows]


class FrameworkUnavailableError(ValueError):
    """The workload has no implementation in the requested framework."""


@dataclasses.dataclass(frozen=True)
class PresetSize:
    """Everything about a workload that changes between `tiny`, `cpu` and `full`."""

    target_value: float
    step_hint: int
    batch_size: int
    eval_period_s: float
    #: the fixed time budget of a preset that does not measure one (`tiny`); presets that do
    #: (harness/core/presets.py) get this machine's budget from its reference step time instead
    max_runtime_s: float | None = None
    eval_period_steps: int | None = None
    max_batch_size: int | None = None
    test_target_value: float | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ExampleCounts:
    """How many examples (rows of a batch: images, windows, click rows) each split holds, as AlgoPerf's
    `num_train_examples`, `num_eval_train_examples` and `num_validation_examples` count them."""

    train: int
    eval_train: int
    validation: int


class Workload:
    """A fixed model + data + loss + validation target + budget (PyTorch implementation).

    Subclasses set the class attributes and implement the methods below. Variants subclass a base
    workload and override properties only (AlgoPerf's held-out workloads).
    """

    name: str
    family: str
    description: str = ""
    algoperf_name: str | None = None  # the AlgoPerf workload an AlgoPerf `get_batch_size` knows
    variant_of: str | None = None
    target_metric: str
    target_direction: str  # "min" or "max"
    loss_type: LossType
    framework: str = "pytorch"  # of this implementation; `frameworks` lists every one the workload has
    frameworks: tuple[str, ...] = ("pytorch",)
    data_description: str = ""
    sizes: Mapping[str, PresetSize]
    #: parameter-name prefixes of the output layer (AlgoPerf's `is_output_params`)
    output_params_prefixes: tuple[str, ...] = ()
    #: bumped when the model or data code changes what a trial computes: target-setting trials and
    #: measured step times of an older version are then not reused (harness.core.runner.workload_definition)
    version: int = 1
    #: presets whose forward passes run under bf16 autocast on CUDA, and presets whose model is
    #: compiled, by default (harness/core/precision.py; the definition of what a preset computes)
    bf16_presets: tuple[str, ...] = ()
    compile_presets: tuple[str, ...] = ()

    def __init__(self, preset: str = "cpu", data_dir: str | None = None, device: str | torch.device = "cpu"):
        if preset not in self.sizes:
            raise ValueError(
                f"workload {self.name!r} has no preset {preset!r}; valid presets: {sorted(self.sizes)}"
            )
        self.preset = preset
        # the registry applies the committed target of this preset (harness/core/targets.py) on top
        self.size = self.sizes[preset]
        self.data_dir = data_dir
        self.device = torch.device(device)
        #: the precision policy in force; the runner replaces it by the trial's (with its overrides)
        self.policy: PrecisionPolicy = precision.default_policy(self)
        self.metrics_logger: MetricsLogger | None = None
        self._param_shapes: dict[str, torch.Size] | None = None
        self._param_types: dict[str, ParameterType] | None = None

    # ---- properties AlgoPerf submissions read -------------------------------------------------
    @property
    def step_hint(self) -> int:
        return self.size.step_hint

    @property
    def max_allowed_runtime_sec(self) -> float:
        return self.size.max_runtime_s

    @property
    def target_value(self) -> float:
        return self.size.target_value

    @property
    def validation_target_value(self) -> float:
        return self.size.target_value

    @property
    def eval_period_time_sec(self) -> float:
        return self.size.eval_period_s

    @property
    def target_metric_name(self) -> str:
        """AlgoPerf's name of the target metric, without its split: `validation_accuracy` -> `accuracy`; the
        eval results submissions see carry it as `validation/accuracy` (harness.core.runner.algoperf_eval_result)."""
        return self.target_metric.split("_", 1)[1]

    @property
    def num_train_examples(self) -> int:
        return self.example_counts().train

    @property
    def num_eval_train_examples(self) -> int:
        return self.example_counts().eval_train

    @property
    def num_validation_examples(self) -> int:
        return self.example_counts().validation

    @property
    def num_test_examples(self) -> None:
        """No timetrial workload has a test split (AlgoPerf: None where a workload has none)."""
        return None

    @property
    def eval_batch_size(self) -> int:
        raise NotImplementedError

    def is_output_params(self, param_key: str) -> bool:
        return param_key.startswith(self.output_params_prefixes)

    @property
    def param_shapes(self) -> dict[str, ShapeTuple]:
        if self._param_shapes is None:
            raise RuntimeError("param_shapes is known only after init_model_fn")
        return {name: ShapeTuple(shape) for name, shape in self._param_shapes.items()}

    @property
    def model_params_types(self) -> dict[str, ParameterType]:
        """Each parameter's kind: from the model's module types once the runner recorded them, else guessed
        from the parameter's name and shape (a model that is no torch module, e.g. a JAX pytree)."""
        if self._param_types is not None:
            return dict(self._param_types)
        return {name: parameter_type(name, shape.shape_tuple) for name, shape in self.param_shapes.items()}

    def record_parameter_types(self, model: Any) -> None:
        """Called by the runner after `init_model_fn`: types from what each parameter's module is."""
        if isinstance(model, torch.nn.Module):
            self._param_types = module_parameter_types(model)

    def has_reached_target(self, metrics: Mapping[str, float]) -> bool:
        value = metrics[self.target_metric]
        if self.target_direction == "min":
            return value <= self.target_value
        return value >= self.target_value

    @classmethod
    def implementation(cls, framework: str) -> type["Workload"]:
        """The class that implements this workload in `framework`: this one, or the class that the family's
        `<framework>_workload` module builds with `<framework>_implementation(cls)` (found by that name
        beside the workload's module, and imported only when asked: JAX is an optional extra)."""
        if framework == cls.framework:
            return cls
        if framework not in cls.frameworks:
            raise FrameworkUnavailableError(f"workload {cls.name!r} has no {framework} implementation; "
                                            f"valid frameworks: {list(cls.frameworks)}")
        family_package = cls.__module__.rsplit(".", 1)[0]
        module = importlib.import_module(f"{family_package}.{framework}_workload")
        return getattr(module, f"{framework}_implementation")(cls)

    # ---- framework hooks the runner uses (PyTorch here; other frameworks override them) --------
    def synchronize(self, outputs: Any = None) -> None:
        """Wait until the device has finished the work queued so far (or the work behind `outputs`)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def params_state(self, model: Any) -> Any:
        """The model's parameters as a picklable checkpoint entry."""
        return model.state_dict()

    def load_params_state(self, model: Any, saved: Any) -> Any:
        """`model` with the checkpointed parameters loaded; returns the model to continue with."""
        model.load_state_dict(saved)
        return model

    def autocast(self):
        """The context `model_fn` runs the model's forward pass in: the precision policy's autocast."""
        return self.policy.autocast(self.device)

    # ---- what each workload implements ---------------------------------------------------------
    def init_model_fn(self, rng: int) -> tuple[torch.nn.Module, Any]:
        """Build the model on `self.device`; returns (model, model_state)."""
        raise NotImplementedError

    def model_fn(
        self,
        params: torch.nn.Module,
        augmented_and_preprocessed_input_batch: Mapping[str, torch.Tensor],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """Returns {'summed', 'n_valid_examples', 'per_example'}; the mean loss is summed / n."""
        raise NotImplementedError

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Infinite stream of training batches; the same (seed, step) always gives the same batch,
        so a resumed trial continues where it stopped."""
        raise NotImplementedError

    def eval_model(self, model: torch.nn.Module, model_state: Any) -> dict[str, float]:
        """Metrics on the train subset and validation split; must contain `target_metric`."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Load (and cache) data; raise DataMissingError naming the preparing command if absent."""

    def data_available(self) -> bool:
        """False when the data must first be downloaded (scripts/prepare_data.py)."""
        return True

    def write_random_data(self, data_dir: str) -> None:
        """Write random data of the real shapes and format where `prepare_data` looks for this preset's
        downloaded dataset under `data_dir`, so that throughput checks (scripts/bench_data.py --random-data,
        scripts/device_check.sh) run the real input pipeline on a machine without the dataset. Never for results."""
        raise NotImplementedError(f"workload {self.name!r} ({self.preset}) has no random stand-in data")

    # ---- what `timetrial describe` reports (after prepare_data) -----------------------------------
    #: what one counted unit of `split_sizes` is ("examples", "characters", "predicted tokens", ...)
    example_unit: str = "examples"

    def example_counts(self) -> ExampleCounts:
        """Examples per split (after prepare_data)."""
        raise NotImplementedError

    def split_sizes(self) -> dict[str, int]:
        """{"train": n, "validation": m} in `example_unit`s; validation = what the metric averages over."""
        counts = self.example_counts()
        return {"train": counts.train, "validation": counts.validation}

    def trivial_scores(self) -> dict[str, float]:
        """The validation `target_metric` of trivial models (name -> score), computed from the data, so a
        reader can see how far the target is from them (e.g. a bigram model for a language model)."""
        return {}

    # ---- what scripts/bench_mfu.py counts (harness/core/flops.py; after prepare_data) -------------------
    def train_step_flops(self, model: torch.nn.Module, model_state: Any, batch_size: int) -> int:
        """Model FLOPs of one training step at `batch_size`: 6 per multiply-add of one example's forward
        pass (its Linear and convolution layers, counted from their shapes on a one-example batch, plus
        `functional_multiply_adds`)."""
        example = next(self.train_batches(1, seed=0))
        layers = flops.layer_multiply_adds(model, lambda: self.model_fn(
            model, example, model_state, ForwardPassMode.EVAL, None, False))
        return flops.TRAIN_FLOPS_PER_MULTIPLY_ADD * batch_size * (layers + self.functional_multiply_adds())

    def functional_multiply_adds(self) -> int:
        """Multiply-adds per example of the products outside Linear and convolution layers (attention,
        DLRM's dot interaction)."""
        return 0


class DataMissingError(FileNotFoundError):
    pass


NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm)
BATCH_NORMS = (torch.nn.modules.batchnorm._BatchNorm,)


def module_parameter_types(model: torch.nn.Module) -> dict[str, ParameterType]:
    """AlgoPerf's parameter kinds from module types: norms, batch norms, embeddings, convolutions, and the
    projections of attention blocks (a Linear inside a module named *attn*/*attention*: fused QKV when its
    output is three times its input, else the output projection; nn.MultiheadAttention's own parameters)."""
    types: dict[str, ParameterType] = {}
    seen: set[int] = set()  # a tied parameter (GPT's lm_head = wte) keeps its first name, as named_parameters
    for module_name, module in model.named_modules():
        in_attention = any(part in module_name.lower() for part in ("attn", "attention"))
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{name}" if module_name else name
            is_bias = name.endswith("bias")
            if isinstance(module, NORMS):
                kind = ParameterType.LAYER_NORM_BIAS if is_bias else ParameterType.LAYER_NORM_SCALE
            elif isinstance(module, BATCH_NORMS):
                kind = ParameterType.BATCH_NORM_BIAS if is_bias else ParameterType.BATCH_NORM_SCALE
            elif isinstance(module, torch.nn.Embedding):
                kind = ParameterType.EMBEDDING
            elif isinstance(module, torch.nn.MultiheadAttention):
                kind = ParameterType.ATTENTION_BIAS if is_bias else ParameterType.ATTENTION_QKV
            elif isinstance(module, torch.nn.Linear) and (in_attention or isinstance(
                    module, torch.nn.modules.linear.NonDynamicallyQuantizableLinear)):
                fused = module.out_features == 3 * module.in_features
                kind = (ParameterType.ATTENTION_BIAS if is_bias
                        else ParameterType.ATTENTION_QKV if fused else ParameterType.ATTENTION_OUT)
            elif isinstance(module, torch.nn.modules.conv._ConvNd):
                kind = ParameterType.BIAS if is_bias else ParameterType.CONV_WEIGHT
            else:
                kind = parameter_type(full, param.shape)
            types[full] = kind
    return types


def parameter_type(name: str, shape: tuple[int, ...]) -> ParameterType:
    """AlgoPerf-style parameter kind from a parameter's name and shape."""
    lowered = name.lower()
    if "embed" in lowered or lowered.startswith("wte") or lowered.startswith("wpe"):
        return ParameterType.EMBEDDING
    if lowered.startswith("bn") or ".bn" in lowered or "batch_norm" in lowered or "batchnorm" in lowered:
        return ParameterType.BATCH_NORM_BIAS if lowered.endswith("bias") else ParameterType.BATCH_NORM_SCALE
    if "norm" in lowered or lowered.startswith("ln") or ".ln" in lowered:
        return ParameterType.LAYER_NORM_BIAS if lowered.endswith("bias") else ParameterType.LAYER_NORM_SCALE
    if lowered.endswith("bias"):
        return ParameterType.BIAS
    if len(shape) == 4:
        return ParameterType.CONV_WEIGHT
    return ParameterType.WEIGHT


#: What a submission's `update_params` returns: (optimizer_state, params, model_state).
UpdateReturn = tuple[Any, torch.nn.Module, Any]
DataSelectionFn = Callable[..., dict[str, torch.Tensor]]
