"""Finding, loading and checking submissions.

A submission is a folder with `submission.py`, `tuning_search_space.json` and `metadata.json`
(or a single `.py` file, or an imported module). `submission.py` either implements AlgoPerf's
functions (`init_optimizer_state`, `update_params`, optional `get_batch_size`, `data_selection`,
`prepare_for_eval`) or takes the short path: `create_optimizer(params, hyperparameters, workload)`
returning a `torch.optim.Optimizer`, plus an optional `schedule(step, step_hint, hyperparameters)`
returning the learning-rate multiplier. See docs/submission_api.md.
"""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import types
from pathlib import Path
from typing import Any, Callable, Mapping

from harness.core import closure
from harness.core.search_space import SearchSpace, as_type, load_search_space

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS_DIR = PROJECT_ROOT / "submissions"
COMPAT_DIR = Path(__file__).resolve().parent / "compat"
METADATA_FIELDS = ("method", "paper")
PAPER_FIELDS = ("title", "arxiv")


class SubmissionError(ValueError):
    pass


@dataclasses.dataclass
class Submission:
    name: str
    module: types.ModuleType
    path: Path | None
    metadata: dict[str, Any]
    search_space: SearchSpace | None
    api: str  # "algoperf" or "optimizer"
    init_optimizer_state: Callable[..., Any]
    update_params: Callable[..., Any]
    data_selection: Callable[..., Any]
    get_batch_size: Callable[[str], int] | None
    prepare_for_eval: Callable[..., Any] | None

    @property
    def framework(self) -> str:
        """metadata.json's `framework`; without one (an AlgoPerf submission, which AlgoPerf's runner is told
        the framework of by a flag) the framework the module imports: jax if it imports jax and not torch."""
        if "framework" in self.metadata:
            return self.metadata["framework"]
        imported = {value.__name__.split(".")[0] for value in vars(self.module).values()
                    if isinstance(value, types.ModuleType)}
        return "jax" if "jax" in imported and "torch" not in imported else "pytorch"

    def default_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters of an untuned run: metadata `defaults`, else the search space's center."""
        if "defaults" in self.metadata:
            return dict(self.metadata["defaults"])
        if self.search_space is not None:
            return self.search_space.center()
        return {}

    def checked_hyperparameters(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Command-line hyperparameters checked at the door: each name must be in the search space or the
        defaults (unless metadata says `"accepts_extra_hyperparameters": true`), and each value takes the
        type that the search space (else the default) gives it, so hp.learning_rate=1e-3 is a float."""
        defaults = self.default_hyperparameters()
        known = sorted(set(defaults) | set(self.search_space.names if self.search_space else ()))
        checked = {}
        for name, value in overrides.items():
            if name not in known and not self.metadata.get("accepts_extra_hyperparameters", False):
                raise SubmissionError(f"{self.name} has no hyperparameter {name!r}; valid: {known} (a submission that "
                                      "takes other names declares \"accepts_extra_hyperparameters\": true in metadata.json)")
            if self.search_space is not None and name in self.search_space.names:
                checked[name] = self.search_space.typed(name, value)
            elif defaults.get(name) is not None:
                checked[name] = as_type(name, value, type(defaults[name]))
            else:
                checked[name] = value
        return checked

    def unsupported_reason(self, workload_name: str) -> str | None:
        for pattern, reason in self.metadata.get("unsupported_workloads", {}).items():
            if fnmatch.fnmatch(workload_name, pattern):
                return reason
        return None

    def source_hash(self) -> str:
        if self.path is not None:
            return source_hash(self.path)
        module_file = getattr(self.module, "__file__", None)
        if module_file:
            return source_hash(Path(module_file))
        # A module built in memory (tests, notebooks): hash the source of its functions.
        sources = [inspect.getsource(fn) for _, fn in sorted(vars(self.module).items()) if inspect.isfunction(fn)]
        return hashlib.sha256("".join(sources).encode()).hexdigest()[:16]


def available_submissions() -> list[str]:
    return sorted(p.parent.name for p in SUBMISSIONS_DIR.glob("*/submission.py"))


def source_hash(path: Path) -> str:
    """sha256 over the submission's code and JSON files and over the project modules they import
    (`imported_project_files`), names and contents, stable across machines: an edit to shared code such as
    `optimlib.schedules` makes every trial of the submissions that use it stale."""
    digest = hashlib.sha256()
    root = path if path.is_dir() else path.parent
    files = [file for file in (sorted(path.rglob("*")) if path.is_dir() else [path])
             if file.is_file() and file.suffix in (".py", ".json") and "__pycache__" not in file.parts]
    for file in files:
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    for file in imported_project_files([file for file in files if file.suffix == ".py"]):
        digest.update(f"project:{file.relative_to(PROJECT_ROOT)}".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def imported_project_files(sources: list[Path]) -> list[Path]:
    """The files of the project's modules (under PROJECT_ROOT) that `sources` import, directly or through
    one another, found statically (absolute imports, also inside functions), sorted. `from pkg import name`
    counts pkg/name.py when it exists, else pkg's own file; a package's `__init__.py` counts only when the
    import names the package itself. The engine (`harness`) is left out: it is the contract a submission
    calls, and a change there that alters what trials compute bumps the runner's TIMING_VERSION or the
    workload's `version`, which make old trials stale on their own."""
    def module_file(dotted: str) -> Path | None:
        base = PROJECT_ROOT.joinpath(*dotted.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def imports(file: Path) -> list[Path]:
        found = []
        for node in ast.walk(ast.parse(file.read_bytes(), str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" if module_file(f"{node.module}.{alias.name}") else node.module
                         for alias in node.names]
            else:
                continue
            found += [file for name in names if name.split(".")[0] != "harness" and (file := module_file(name))]
        return found

    seen: set[Path] = set()
    todo = [file.resolve() for file in sources]
    while todo:
        for found in imports(todo.pop()):
            if found not in seen:
                seen.add(found)
                todo.append(found)
    return sorted(seen - {file.resolve() for file in sources})


#: the shim's modules that the pre-0.5 name `algorithmic_efficiency` aliases as soon as a submission loads. Not
#: its JAX modules (`jax_utils`, `jax_sharding_utils`): they import jax, so they load only when a submission
#: imports them (from the shim's folder, under either name), and a PyTorch submission neither needs the jax
#: extra nor waits for jax to import
ALGOPERF_MODULES = ("spec", "pytorch_utils", "random_utils", "param_utils")


def _ensure_algoperf_importable() -> None:
    """Resolve `import algoperf` to the light shim when the real package is absent, and the pre-0.5
    package name `algorithmic_efficiency` to whichever `algoperf` that is."""
    if importlib.util.find_spec("algoperf") is None and str(COMPAT_DIR) not in sys.path:
        sys.path.append(str(COMPAT_DIR))
    if "algorithmic_efficiency" not in sys.modules and importlib.util.find_spec("algorithmic_efficiency") is None:
        sys.modules["algorithmic_efficiency"] = importlib.import_module("algoperf")
        for name in ALGOPERF_MODULES:
            sys.modules[f"algorithmic_efficiency.{name}"] = importlib.import_module(f"algoperf.{name}")


#: what provides a package that AlgoPerf submissions import and timetrial does not install by default
IMPORT_HINTS = {
    "absl": " (pip install 'timetrial[algoperf]' provides absl)",
    "chex": " (AlgoPerf's JAX submissions annotate their optax states with chex: pip install chex)",
    "flax": (" (not installed: timetrial's JAX models are parameter dicts, not flax modules, and a submission "
             "that imports flax, as AlgoPerf's pmap-era ones do for flax.jax_utils, is not supported: docs/algoperf.md)"),
}


def _import_file(file: Path) -> types.ModuleType:
    if file.parent.parent == SUBMISSIONS_DIR and file.name == "submission.py":
        return importlib.import_module(f"submissions.{file.parent.name}.submission")
    module_name = "timetrial_user_submission_" + hashlib.sha1(str(file).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))  # sibling imports inside a user's folder
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(file.parent))
    sys.modules[module_name] = module
    return module


def _locate(ref: str) -> Path:
    candidate = Path(ref).expanduser()
    if candidate.exists():
        return candidate.resolve()
    named = SUBMISSIONS_DIR / ref
    if (named / "submission.py").exists():
        return named
    raise SubmissionError(
        f"unknown submission {ref!r}: not a path to a folder or .py file, and not one of "
        f"{available_submissions()}"
    )


def load_submission(ref: str | Path | types.ModuleType) -> Submission:
    """Load a submission from a name under submissions/, a folder, a .py file, or a module."""
    if isinstance(ref, types.ModuleType):
        module, path, folder = ref, None, None
        name = ref.__name__.rsplit(".", 1)[-1]
    else:
        path = _locate(str(ref))
        folder = path if path.is_dir() else None
        file = path / "submission.py" if folder else path
        if not file.exists():
            raise SubmissionError(f"{path}: a submission folder needs submission.py")
        name = path.name if folder else path.stem
        _ensure_algoperf_importable()
        try:
            module = _import_file(file)
        except ModuleNotFoundError as err:
            hint = IMPORT_HINTS.get((err.name or "").split(".")[0], "")
            raise SubmissionError(f"{file}: cannot import {err.name!r}{hint}") from err
    metadata = _read_metadata(folder)
    space_file = folder / "tuning_search_space.json" if folder else None
    search_space = load_search_space(space_file) if space_file and space_file.exists() else None
    return _bind(name, module, path, metadata, search_space)


def _read_metadata(folder: Path | None) -> dict[str, Any]:
    if folder is None or not (folder / "metadata.json").exists():
        return {}
    try:
        return json.loads((folder / "metadata.json").read_text())
    except json.JSONDecodeError as err:
        raise SubmissionError(f"{folder / 'metadata.json'}: not valid JSON ({err})") from None


#: AlgoPerf's arguments of each submission function, in the order the runner passes them
EXPECTED_ARGUMENTS = {
    "init_optimizer_state": ("workload", "model_params", "model_state", "hyperparameters", "rng"),
    "update_params": ("workload", "current_param_container", "current_params_types", "model_state", "hyperparameters",
                      "batch", "loss_type", "optimizer_state", "eval_results", "global_step", "rng"),
    "data_selection": ("workload", "input_queue", "optimizer_state", "current_param_container", "model_state",
                       "hyperparameters", "global_step", "rng"),
    "prepare_for_eval": ("workload", "current_param_container", "current_params_types", "model_state",
                         "hyperparameters", "loss_type", "optimizer_state", "eval_results", "global_step", "rng"),
    "get_batch_size": ("workload_name",),
    "create_optimizer": ("params", "hyperparameters", "workload"),
    "schedule": ("step", "step_hint", "hyperparameters"),
}


def check_signature(name: str, fn: Callable[..., Any], where: str) -> None:
    """A function that cannot take the runner's positional arguments fails at load, naming what it expects."""
    expected = EXPECTED_ARGUMENTS[name]
    try:
        inspect.signature(fn).bind(*expected)
    except TypeError:
        raise SubmissionError(f"{where}: {name}{inspect.signature(fn)} cannot take the arguments the runner passes: "
                              f"{name}({', '.join(expected)}); see docs/submission_api.md") from None
    except ValueError:  # a builtin without a signature: nothing to check
        pass


def _bind(name, module, path, metadata, search_space) -> Submission:
    functions = {n: getattr(module, n, None) for n in (
        "init_optimizer_state", "update_params", "data_selection", "get_batch_size",
        "prepare_for_eval", "create_optimizer", "schedule")}
    for function_name, fn in functions.items():
        if callable(fn):
            check_signature(function_name, fn, f"submission {name!r}")
    if functions["update_params"] is not None:
        missing = [n for n in ("init_optimizer_state", "update_params") if functions[n] is None]
        if missing:
            raise SubmissionError(f"submission {name!r} defines update_params but not {missing}")
        api = "algoperf"
        init_fn, update_fn = functions["init_optimizer_state"], functions["update_params"]
    elif functions["create_optimizer"] is not None:
        api = "optimizer"
        adapter = closure.OptimizerAdapter(functions["create_optimizer"], functions["schedule"])
        init_fn, update_fn = adapter.init_optimizer_state, adapter.update_params
    else:
        raise SubmissionError(
            f"submission {name!r} defines neither update_params (AlgoPerf API) nor create_optimizer "
            "(short path); see docs/submission_api.md"
        )
    return Submission(
        name=metadata.get("name", name),
        module=module,
        path=path,
        metadata=metadata,
        search_space=search_space,
        api=api,
        init_optimizer_state=init_fn,
        update_params=update_fn,
        data_selection=functions["data_selection"] or next_batch,
        get_batch_size=functions["get_batch_size"],
        prepare_for_eval=functions["prepare_for_eval"],
    )


def next_batch(workload, input_queue, optimizer_state, current_param_container, model_state,
               hyperparameters, global_step, rng):
    """Default `data_selection`: the next batch of the pre-shuffled stream (AlgoPerf's default)."""
    return next(input_queue)


def check_submission(ref: str | Path) -> tuple[Submission | None, list[str], list[str]]:
    """(submission, problems, warnings). Problems make the submission unusable for the benchmark."""
    problems: list[str] = []
    warnings: list[str] = []
    try:
        submission = load_submission(ref)
    except Exception as err:  # noqa: BLE001  (any import-time error is a problem to report)
        return None, [f"{type(err).__name__}: {err}"], []
    if submission.path is None or submission.path.is_file():
        warnings.append("a single-file submission has no metadata.json or tuning_search_space.json")
        return submission, problems, warnings
    folder = submission.path
    if submission.search_space is None:
        problems.append(f"{folder}: missing tuning_search_space.json")
    if not submission.metadata:
        problems.append(f"{folder}: missing metadata.json (method, paper.title, paper.arxiv)")
    else:
        problems += [f"metadata.json: missing {f!r}" for f in METADATA_FIELDS if f not in submission.metadata]
        paper = submission.metadata.get("paper", {})
        problems += [f"metadata.json: missing paper.{f}" for f in PAPER_FIELDS if f not in paper]
    defaults = submission.default_hyperparameters()
    if submission.search_space is not None and submission.search_space.fixed_points is None:
        unknown = sorted(set(submission.search_space.names) - set(defaults)) if "defaults" in submission.metadata else []
        if unknown:
            warnings.append(f"search-space keys without a default in metadata.json: {unknown}")
    if submission.framework not in ("pytorch", "jax"):
        problems.append(f"metadata.json: framework {submission.framework!r}; valid: pytorch, jax")
    return submission, problems, warnings
