# The course's commands:  `make lab` (JupyterLab on the notebooks),  `make course` (run every
# notebook),  `make student` (the edition without solutions),  `make site` (the website)  and
# `make test`.
# Variables: PROFILE=smoke|cpu|gpu|gpu-smoke|auto  DATA=<folder or .npz>
#            BACKEND=tensorflow|jax|torch  ONLY="00 01"  PORT=8888  SITE_PROFILE=smoke|cpu
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BACKEND ?= tensorflow
DATA ?=
ONLY ?=
OUT ?= build
# pytest-xdist workers for the suites (the CI machine has 2 cores; notebooks and subprocess tests
# leave one core idle when run one at a time).
WORKERS ?= auto
# What every suite runs with: xdist keeps each `xdist_group` on one worker (a module-scoped fixture
# is built once), and JAX's compiled programs are shared by the workers, the notebooks' kernels and
# the subprocesses of one run (tests build the same small models many times).
PYTEST = JAX_COMPILATION_CACHE_DIR=$(abspath $(OUT))/jax-cache $(PY) -m pytest -q \
	-p no:cacheprovider -n $(WORKERS) --dist loadgroup
PORT ?=
SITE_PROFILE ?= smoke
STUDENT ?= $(OUT)/student

.PHONY: lab student site course test lint test-tensorflow test-jax test-torch test-gpu-smoke test-extended test-install check clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# JupyterLab on notebooks/ with XRAYKIT_PROFILE, XRAYKIT_DATA and KERAS_BACKEND set (each lesson's
# first cell prints them). Ctrl-C stops it.
lab: $(VENV)/.installed
	$(PY) -m xraykit course lab --profile $(PROFILE) --backend $(BACKEND) \
		$(if $(DATA),--data $(DATA)) $(if $(PORT),--port $(PORT))

# The student edition: no solution cells or <details> answers; an answer cell after each exercise
# and a check cell where the exercise has one. Grade with `python -m xraykit course grade DIR`.
student: $(VENV)/.installed
	$(PY) -m xraykit course student --out $(STUDENT) $(if $(ONLY),--only $(ONLY))

# The website: the notebooks executed once in SITE_PROFILE (smoke by default; cpu for real numbers),
# then built by Sphinx + MyST-NB from those executed copies into $(OUT)/site/index.html.
site: $(VENV)/.installed
	KERAS_BACKEND=$(BACKEND) $(PY) -m xraykit course run --profile $(SITE_PROFILE) \
		--out $(OUT)/site-notebooks --backend $(BACKEND) $(if $(DATA),--data $(DATA)) \
		$(if $(ONLY),--only $(ONLY))
	$(PY) -m xraykit course site --executed $(OUT)/site-notebooks --out $(OUT)/site \
		--profile $(SITE_PROFILE)

course: $(VENV)/.installed
	KERAS_BACKEND=$(BACKEND) $(PY) -m xraykit course run --profile $(PROFILE) --out $(OUT) \
		--backend $(BACKEND) $(if $(DATA),--data $(DATA)) $(if $(ONLY),--only $(ONLY))

# ruff first (pycodestyle, pyflakes, isort, Google docstrings), then the suites:
# - tensorflow: every test, every notebook in smoke (with the shared data and offline);
# - jax: the backend-sensitive tests (marker `backend`) and, in gpu-smoke, the lessons of
#   GPU_SMOKE_IN_CI (tests/test_notebooks.py);
# - `make test-extended`: the torch suite and every notebook in gpu-smoke under JAX (not in CI);
# - the wheel installed into a fresh environment.
test: lint test-tensorflow test-jax test-install

# What CI's 25-minute budget on 2 cores cannot hold yet: the backend-sensitive tests under torch and
# the whole course in the gpu-smoke profile under JAX (about 24 CPU-minutes; CI runs three lessons).
test-extended: test-torch test-gpu-smoke

lint: $(VENV)/.installed
	$(PY) -m ruff check xraykit tests benchmarks

test-tensorflow: $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(PYTEST) -m "not install and not gpu_smoke"

# The JAX backend tests, and in the same run the lessons whose gpu-smoke run fits CI's budget.
test-jax: $(VENV)/.installed
	KERAS_BACKEND=jax $(PYTEST) \
		-m "(backend or gpu_smoke) and not notebooks and not install and not extended"

test-gpu-smoke: $(VENV)/.installed
	KERAS_BACKEND=jax $(PYTEST) -m gpu_smoke

test-torch: $(VENV)/.installed
	KERAS_BACKEND=torch $(PYTEST) -m "backend and not notebooks and not install and not gpu_smoke"

# Builds the wheel, installs it with its declared dependencies only into a fresh venv (from the
# package index), and runs the CLI and lesson 00 from there.
test-install: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m install

check: $(VENV)/.installed
	$(PY) -m xraykit course check

clean:
	rm -rf $(OUT) .pytest_cache
