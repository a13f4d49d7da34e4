# The whole set-up on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test test-slow lint typecheck docs wheel-test install clean

# setup.py and the C source: the compiled NNSTD kernels are rebuilt when they change (an
# editable install does not rebuild an extension by itself)
$(STAMP): pyproject.toml setup.py topo/_nnstd_kernels.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev,docs]'
	touch $(DOCS_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/topo demo --out demo-output

lint: $(STAMP) typecheck
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The site in docs/_build/html; warnings are errors, and the gallery's scripts run. The build
# imports every topo module; with PYTHONDONTWRITEBYTECODE unset their bytecode is written then
# and `make test`'s pytest workers load it instead of each compiling topo again.
docs: $(DOCS_STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Build the sdist and wheel, install the wheel in a fresh environment, run it there.
wheel-test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:randomly tests/test_wheel.py

# The suite without the few end-to-end runs (marked slow; `make test-slow` runs those, and CI
# runs both). TOPO_REQUIRE_DOCS: tests/test_docs.py fails (not skips) without the built site.
# PYTHONDONTWRITEBYTECODE is unset so that topo's and the tests' bytecode (and pytest's
# rewritten test modules) is written once to the ignored __pycache__ folders and reused by
# every pytest worker instead of being compiled again in each.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n 2 -q

test: $(STAMP) lint docs
	TOPO_REQUIRE_DOCS=1 $(PYTEST) -m "not slow"

# The end-to-end runs: real training, the demo, the notebooks, the Lightning callback, the
# wheel in a fresh environment, the start-up of commands in a fresh interpreter.
test-slow: $(STAMP)
	$(PYTEST) -m slow

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache .mypy_cache docs/_build \
		docs/api docs/auto_examples
