# Developer entry points. Everything runs inside $(VENV), created on first use, so
# `make test` works from a clean clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall only when the project's metadata changes (pip install -e is not free).
STAMP := $(VENV)/.nons-installed
PYTEST_ARGS ?=
# `make test` runs on this many pytest-xdist workers: the suite mostly waits on servers
# and processes, so three workers overlap well on two cores (154 s serial, ~95 s here).
TEST_WORKERS ?= 3
BENCH_ARGS ?=

.PHONY: install test test-slow demo lint bench postgres chromium

install:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory install PYTHON=$(PYTHON) VENV=$(VENV)

# PostgreSQL binaries for the event-sink tests (they start a private throwaway cluster).
# Installed from Debian's packages when missing and we may (root); otherwise those tests skip.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "note: PostgreSQL is not installed; the postgres sink tests will be skipped"; \
	fi

# Headless Chromium and its driver for the `nons ui` browser tests, from Debian's packages
# when missing and we may (root); otherwise those tests skip.
chromium:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "note: chromium is not installed; the nons ui browser tests will be skipped"; \
	fi

# `make test` leaves out the scenarios marked slow (half a minute each, mostly waiting);
# `make test-slow` runs them, and CI runs both (.ci/run).
test: $(STAMP) postgres chromium
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Prints the table and writes benchmarks/results/<timestamp>.json (git-ignored);
# `make bench BENCH_ARGS=--no-save` skips the file, `BENCH_ARGS=--quick` is a short run.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
