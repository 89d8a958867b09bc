# One virtual environment for running, testing and benchmarking.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the exporter on its embedded default (SQLite state in ./data/state.db).
run: $(STAMP)
	$(BIN)/clevertap-export-exporter $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bundle $(wildcard bench)
	$(BIN)/mypy --strict exporter

## Lint, type-check and run the whole test suite.
test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

## Full side-by-side benchmark against the Pushgateway; writes bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) *.egg-info
