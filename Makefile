# One entry point for people and CI. `make demo` and `make test` each install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test test-fast lint type all bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/deepmemory demo

# The whole suite. PostgreSQL tests use DEEPMEMORY_TEST_POSTGRES_URL (set by CI;
# without it they skip with a reason, unless CI=true, where they fail).
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

type: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_stores.py --json bench/results.json

all: lint type test
