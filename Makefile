# Two commands on a fresh machine: `make demo` and `make test`.
# Each builds .venv when it is missing, or re-installs when pyproject.toml or the
# lock file changed. Installs take the tested versions from requirements.lock.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
# pip byte-compiles what it installs on one core; compileall does it on all of them
# afterwards, the packages' own test suites left out (the test install: 81 s ->
# 48 s + 20 s on 2 cores). Byte-compiled it
# must be: with PYTHONDONTWRITEBYTECODE set, as on CI, every process would compile
# JAX from source again (measured: +90 s of tests).
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check \
          --no-compile -c $(LOCK)
PYC    := $(BIN)/python -m compileall -qq -j 0 -x '/tests?/' $(VENV)/lib

.PHONY: demo test test-all lint format bench lock notebooks clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "diffphys needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)

# Stamps record which extras are installed; pyproject.toml newer than a stamp = stale.
$(VENV)/.stamp-base: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) -e .
	$(PYC)
	@touch $@

$(VENV)/.stamp-test: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) -e '.[test,jaxopt]'
	$(PYC)
	@touch $@ $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(BIN)/diffphys demo --out runs/demo

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Tests run in parallel processes (pytest-xdist), one per core, at most 4, a file at
# a time per process (its module fixtures and compiled functions serve all its
# tests), heaviest files first (tests/conftest.py orders them).
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist loadfile \
          --no-loadscope-reorder

test: lint
	$(PYTEST)

# The slow tests include the Ray engine's: [ray] (240 MB) only here, not in `make test`.
$(VENV)/.stamp-ray: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) -e '.[test,jaxopt,ray]'
	$(PYC)
	@touch $@ $(VENV)/.stamp-test $(VENV)/.stamp-base

test-all: lint $(VENV)/.stamp-ray
	$(PYTEST) -m ''

format: $(VENV)/.stamp-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(VENV)/.stamp-bench: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) -e '.[bench]'
	$(PYC)
	@touch $@

bench: $(VENV)/.stamp-bench
	@for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# Re-resolve the newest versions pyproject.toml allows, in a scratch environment,
# and write them to the lock file; then run `make test` with them.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,jaxopt,bench]'
	{ sed -n '1,2p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^diffphys'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

# JupyterLab and a kernel of this venv for the notebooks: then
# `.venv/bin/jupyter lab notebooks/` and pick the kernel "Python (diffphys)".
notebooks: $(VENV)/.stamp-test
	$(PIP) -e '.[notebook]'
	$(PYC)
	$(BIN)/python -m ipykernel install --sys-prefix --name diffphys --display-name "Python (diffphys)"

clean:
	rm -rf $(VENV) .venv-lock .pytest_cache .ruff_cache
