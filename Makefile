# Two commands on a fresh machine: `make demo` and `make test`.
# Each builds .venv when it is missing, or re-installs when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-all lint format bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "diffphys needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)

# Stamps record which extras are installed; pyproject.toml newer than a stamp = stale.
$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[test,jaxopt]'
	@touch $@ $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(BIN)/diffphys demo --out runs/demo

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Tests run in parallel processes (pytest-xdist), one per core, at most 4.
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses=4

test: lint
	$(PYTEST)

test-all: lint
	$(PYTEST) -m ''

format: $(VENV)/.stamp-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[bench]'
	@touch $@

bench: $(VENV)/.stamp-bench
	@for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
