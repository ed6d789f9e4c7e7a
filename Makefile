# The course's two commands:  `make course` (run every notebook)  and  `make test`.
# Variables: PROFILE=smoke|cpu|gpu|auto  DATA=<folder or .npz>  BACKEND=tensorflow|jax  ONLY="00 01"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BACKEND ?= tensorflow
DATA ?=
ONLY ?=
OUT ?= build

.PHONY: course test lint test-tensorflow test-jax test-install check clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

course: $(VENV)/.installed
	KERAS_BACKEND=$(BACKEND) $(PY) -m xraykit course run --profile $(PROFILE) --out $(OUT) \
		--backend $(BACKEND) $(if $(DATA),--data $(DATA)) $(if $(ONLY),--only $(ONLY))

# ruff first (pycodestyle, pyflakes, isort, Google docstrings), then the suites.
test: lint test-tensorflow test-jax test-install

lint: $(VENV)/.installed
	$(PY) -m ruff check xraykit tests benchmarks

test-tensorflow: $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:cacheprovider -m "not install"

test-jax: $(VENV)/.installed
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider -m "not notebooks and not install"

# Builds the wheel, installs it with its declared dependencies only into a fresh venv (from the
# package index), and runs the CLI and lesson 00 from there.
test-install: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider -m install

check: $(VENV)/.installed
	$(PY) -m xraykit course check

clean:
	rm -rf $(OUT) .pytest_cache
