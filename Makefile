# gvae-bench on a fresh machine, in two commands (README, "Quick start"):
#
#   make run     # set up .venv, then train and score GVAE and WGAN-GP on MNIST (the quick profile)
#   make test    # set up .venv, then run the tests (what .ci/run does)
#
# Each target creates the virtual environment .venv when it is missing and installs the project into
# it (pip install -e '.[test,ray]'); it reinstalls only when pyproject.toml has changed since.
# Variables (make VAR=value ...):
#   TORCH=cpu         install PyTorch's CPU-only wheels first (no CUDA libraries: a much smaller .venv)
#   DATA=DIR          the data root; default $GVAE_BENCH_DATA, else ../shared/data when it exists, else ./data
#   MODELS, DATASET, PROFILE, SEEDS, RUN_ARGS   what `make run` runs (default: the card's command)
#   TEST_WORKERS      pytest-xdist workers for `make test` (default auto: one per CPU; 0: in one process)
#   PYTEST_ARGS       extra arguments for pytest, e.g. PYTEST_ARGS='-k cli'
#   PYTHON            the interpreter that creates .venv (3.11 or newer; default python3)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= test,ray
TORCH ?=
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

DATA ?= $(or $(GVAE_BENCH_DATA),$(if $(wildcard ../shared/data),$(abspath ../shared/data),data))
MODELS ?= gvae,wgan_gp
DATASET ?= mnist
PROFILE ?= quick
SEEDS ?= 0
RUN_ARGS ?=
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: install run test list

# The stamp file stands for "installed from this pyproject.toml".
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifeq ($(TORCH),cpu)
	$(PY) -m pip install --quiet torch torchvision --index-url $(TORCH_CPU_INDEX)
endif
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

install: $(VENV)/.installed

run: install
	GVAE_BENCH_DATA=$(DATA) $(PY) runner.py --models $(MODELS) --dataset $(DATASET) --profile $(PROFILE) \
		--seeds $(SEEDS) --data-root $(DATA) $(RUN_ARGS)

test: install
	GVAE_BENCH_DATA=$(DATA) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

list: install
	$(PY) runner.py list
