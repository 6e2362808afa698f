# Two entry points for a fresh machine with Python 3.11+ and make:
#   make demo   set up .venv, install tracekit, run the guided demo on a throwaway store
#   make test   set up .venv, install tracekit with its test extras, check the code (ruff
#               lint and format, mypy over tracekit/), run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench docs-cli docs clean

demo: $(STAMP)
	$(BIN)/tracekit demo

test: $(STAMP) check
	$(BIN)/python -m pytest -q

check: $(STAMP)
	$(BIN)/ruff check tracekit tests bench
	$(BIN)/ruff format --check tracekit tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py

docs-cli: $(STAMP)
	$(BIN)/python -m tracekit.cli.docs cli > docs/cli.md
	$(BIN)/python -m tracekit.cli.docs exit-codes > docs/exit-codes.md

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tracekit needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
