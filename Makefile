# The two commands a newcomer needs: `make run` (the demo on a local broker) and `make test`.
# Both create .venv from requirements.lock on first use; nothing is installed globally.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt worker broker-start broker-stop docs bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.8
	$(BIN)/uv pip sync -q -p $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dfdg demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .

worker: $(STAMP)
	$(BIN)/dfdg worker

broker-start: $(STAMP)
	$(BIN)/dfdg broker start

broker-stop: $(STAMP)
	$(BIN)/dfdg broker stop

docs: $(STAMP)
	$(BIN)/dfdg docs events > docs/events.md

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --extra bench -p 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
