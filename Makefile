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

.PHONY: course test test-tensorflow test-jax check clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

course: $(VENV)/.installed
	KERAS_BACKEND=$(BACKEND) $(PY) -m xraykit course run --profile $(PROFILE) --out $(OUT) \
		--backend $(BACKEND) $(if $(DATA),--data $(DATA)) $(if $(ONLY),--only $(ONLY))

test: test-tensorflow test-jax

test-tensorflow: $(VENV)/.installed
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:cacheprovider

test-jax: $(VENV)/.installed
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider -m "not notebooks"

check: $(VENV)/.installed
	$(PY) -m xraykit course check

clean:
	rm -rf $(OUT) .pytest_cache
