# The course's two commands:  `make course` (run every notebook)  and  `make test`.
# Variables: PROFILE=smoke|cpu|gpu|gpu-smoke|auto  DATA=<folder or .npz>
#            BACKEND=tensorflow|jax|torch  ONLY="00 01"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BACKEND ?= tensorflow
DATA ?=
ONLY ?=
OUT ?= build

.PHONY: course test lint test-tensorflow test-jax test-torch test-install check clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

course: $(VENV)/.installed
	KERAS_BACKEND=$(BACKEND) $(PY) -m xraykit course run --profile $(PROFILE) --out $(OUT) \
		--backend $(BACKEND) $(if $(DATA),--data $(DATA)) $(if $(ONLY),--only $(ONLY))

# ruff first (pycodestyle, pyflakes, isort, Google docstrings), then the suites:
# - tensorflow: every test, every notebook in smoke (with the shared data and offline);
# - jax: the backend-sensitive tests (marker `backend`) and every notebook in gpu-smoke;
# - torch: the backend-sensitive tests;
# - the wheel installed into a fresh environment.
test: lint test-tensorflow test-jax test-torch test-install

lint: $(VENV)/.installed
	$(PY) -m ruff check xraykit tests benchmarks

test-tensorflow: $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:cacheprovider -m "not install and not gpu_smoke"

test-jax: $(VENV)/.installed
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider \
		-m "(backend and not notebooks and not install) or gpu_smoke"

test-torch: $(VENV)/.installed
	KERAS_BACKEND=torch $(PY) -m pytest -q -p no:cacheprovider \
		-m "backend and not notebooks and not install"

# Builds the wheel, installs it with its declared dependencies only into a fresh venv (from the
# package index), and runs the CLI and lesson 00 from there.
test-install: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m install

check: $(VENV)/.installed
	$(PY) -m xraykit course check

clean:
	rm -rf $(OUT) .pytest_cache
