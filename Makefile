# One entry point for people and CI. `make demo` and `make test` each install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test test-fast lint type all bench mutants

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/deepmemory demo

# The whole suite. PostgreSQL tests use DEEPMEMORY_TEST_POSTGRES_URL; when it is not
# set and a server answers at PG_URL, that one (so the PostgreSQL half runs wherever a
# server is up). Without either they skip with a reason, unless CI=true: then they fail.
test: install
	@url="$${DEEPMEMORY_TEST_POSTGRES_URL:-}"; \
	if [ -z "$$url" ] && $(BIN)/python -c "import psycopg; psycopg.connect('$(PG_URL)', connect_timeout=2).close()" 2>/dev/null; then \
	  url="$(PG_URL)"; echo "PostgreSQL tests on $$url"; \
	fi; \
	DEEPMEMORY_TEST_POSTGRES_URL="$$url" $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

type: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_stores.py --json bench/results.json

all: lint type test

# Each critical guarantee broken on purpose, one at a time: every mutation must be caught
# by a test (bench/mutants.py). Runs in CI; needs the PostgreSQL server as `make test` does.
mutants: install
	@url="$${DEEPMEMORY_TEST_POSTGRES_URL:-$(PG_URL)}"; \
	DEEPMEMORY_TEST_POSTGRES_URL="$$url" $(BIN)/python bench/mutants.py
