# One virtual environment for running, testing and benchmarking.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run deps lint docs test test-fast bench bench-smoke clean

$(STAMP): pyproject.toml tests/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -c tests/constraints.txt
	touch $(STAMP)

## Run the exporter on its embedded default (SQLite state in ./data/state.db): webhooks on :9877;
## /metrics, the status page and POST /-/reload on :9878, as every shipped deployment does.
run: $(STAMP)
	$(BIN)/clevertap-export-exporter --metrics-port 9878 $(ARGS)

## Install the Debian packages the tests need (tests/debian-packages.txt); as root only.
deps:
	$(PYTHON) tests/deps.py

## Style, types, and the layer contract (import-linter, see pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check exporter tests bundle bench
	$(BIN)/mypy --strict exporter bundle bench tests
	$(BIN)/lint-imports

## Regenerate the checked-in files: the bundle and the reference pages in docs/.
docs: $(STAMP)
	$(BIN)/python -m bundle

## The whole gate: Debian packages, lint, every test.
test: deps lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

## The quick loop: no processes, browser, Prometheus, PostgreSQL or long loads.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

## Full side-by-side benchmark against the Pushgateway; writes bench/RESULTS.md.
bench: deps $(STAMP)
	$(BIN)/python -m bench

bench-smoke: deps $(STAMP)
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) *.egg-info
