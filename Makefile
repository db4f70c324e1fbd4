# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@# Dashboard tests drive Debian's Chromium (a browser download does not work offline).
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres,bench]'
	touch $(STAMP)

## Start clocktower on SQLite with the examples' jobs.
run: $(STAMP)
	$(BIN)/clocktower serve --config examples/clocktower.toml --database sqlite:///clocktower.db

## Lint, type-check and run the whole test suite.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/triggers.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
