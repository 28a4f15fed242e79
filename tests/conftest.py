import os

import pytest

# wandb raises at once without a mode or an API key; tests never talk to the service.
os.environ.setdefault("WANDB_MODE", "disabled")
# MKL's float32 results may depend on buffer alignment; methods with discrete decisions (AdAdaGrad's
# batch-size test) then differ run to run. The Makefile sets this before Python starts.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")
# One XLA thread, like the single torch thread below: the JAX test problems are tiny.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


@pytest.fixture(scope="session", autouse=True)
def machine_cache(tmp_path_factory):
    """Measured reference step times go to a folder of the test session, not the user's cache; trial
    subprocesses (launcher=local, slurm) inherit the variable."""
    folder = tmp_path_factory.mktemp("machines")
    os.environ["TIMETRIAL_MACHINE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def load_script():
    """`load_script("publish_leaderboard")`: a file of scripts/ as a module (scripts/ is not a package)."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def publish_script(load_script):
    return load_script("publish_leaderboard")


@pytest.fixture
def data_dir(tmp_path_factory):
    """A data directory shared by a test session (f* caches, generated files)."""
    return str(tmp_path_factory.getbasetemp() / "data")


@pytest.fixture(autouse=True)
def single_torch_thread():
    """The test models are tiny: a second intra-op thread only contends, badly so on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Reach-the-target tests evaluate every EVAL_EVERY_STEPS steps and never by the clock, so the steps they
# see (and so their verdict) do not depend on how fast or loaded the test machine is.
EVAL_EVERY_STEPS = 10
NEVER_BY_CLOCK_S = 1e9


@pytest.fixture
def cpu_trial(tmp_path, data_dir):
    """run(submission, workload, hyperparameters, max_steps=5000) -> the record of one `cpu`-preset trial
    that stops at the target. The step count is capped and the clock budget widened twentyfold, so
    reaching the target is a statement about the method's steps, not about the machine."""
    from harness.core.results import TrialRecord
    from harness.core.runner import TrialSpec, run_trial

    def run(submission: str, workload: str, hyperparameters: dict | None = None, max_steps: int = 5000,
            framework: str = "pytorch") -> TrialRecord:
        spec = TrialSpec(workload=workload, submission=submission, preset="cpu", hyperparameters=hyperparameters or {},
                         budget_multiplier=20.0, max_steps=max_steps, eval_period_steps=EVAL_EVERY_STEPS,
                         eval_period_s=NEVER_BY_CLOCK_S, framework=framework)
        return run_trial(spec, tmp_path / "results", data_dir=data_dir, device="cpu")

    return run


@pytest.fixture(scope="module")
def framework_pairs(tmp_path_factory):
    """pair(name) -> [PyTorch workload, JAX workload] at `tiny`, data prepared, built once per test module
    (the data generation takes seconds); the data directory is `data_dir`'s."""
    from jax_parity import workload_pair  # imports jax, which only the JAX tests need

    data_dir, cache = str(tmp_path_factory.getbasetemp() / "data"), {}

    def pair(name: str):
        if name not in cache:
            cache[name] = workload_pair(name, data_dir)
        return cache[name]

    return pair
