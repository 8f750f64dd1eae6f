# Two commands set up and run everything: `make run` (the API on the embedded default)
# and `make test` (the suite against real PostgreSQL, Redis and a Celery worker).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-ops demo bench lint system services clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

system:
	bash ops/dev/system-deps.sh

services:
	bash ops/dev/services.sh

run: $(STAMP)
	$(BIN)/c3s serve --host 127.0.0.1 --port 8000

test: $(STAMP) system services
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-ops: $(STAMP) system services
	$(BIN)/python -m pytest tests/ops

demo: $(STAMP)
	$(BIN)/c3s demo

bench: $(STAMP) services
	$(BIN)/c3s bench all --json

lint: $(STAMP)
	$(BIN)/ruff check c3s tests workers
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) instance demo-out bench-out .pytest_cache .import_linter_cache
