# Developer entry points. Everything runs inside $(VENV), created on first use, so
# `make test` works from a clean clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall only when the project's metadata changes (pip install -e is not free).
STAMP := $(VENV)/.nons-installed
PYTEST_ARGS ?=

.PHONY: install test demo lint bench

install:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory install PYTHON=$(PYTHON) VENV=$(VENV)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks
