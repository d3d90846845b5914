from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.kafka_fixture import KafkaForTests, kafka_for_tests

# The webhook endpoint fixture (``receiver``), shared by the webhook sink and runner tests.
pytest_plugins = ["tests.webhook_receiver"]

# Tests run with the development keys (pseudonyms, master key, subscribers' key-encryption
# keys); the worker refuses these outside dev mode, which tests of that refusal set explicitly.
os.environ.setdefault("DFDG_DEV_MODE", "1")

_broker_line: list[str] = []
_figures: list[str] = []


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaForTests]:
    """A real Kafka broker for the session. Never skipped: if none can be had, the test fails with why."""
    try:
        with kafka_for_tests() as k:
            _broker_line.append(k.description)
            print(f"\n[kafka] tests talk to {k.description}")
            yield k
    except Exception as exc:  # noqa: BLE001 - re-raised as a failure with the reason
        pytest.fail(f"no real Kafka broker could be had for the tests: {type(exc).__name__}: {exc}")


@pytest.fixture()
def bootstrap(kafka: KafkaForTests) -> str:
    return kafka.bootstrap


@pytest.fixture()
def unique() -> str:
    """A short unique suffix for topic and group names, so tests never share state."""
    return uuid.uuid4().hex[:10]


@pytest.fixture()
def figures() -> Callable[[str], None]:
    """Record a line of measured figures, printed in the run's summary even without -s."""
    def record(line: str) -> None:
        print(line)
        _figures.append(line)
    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _broker_line:
        terminalreporter.write_line(f"Kafka broker used by the tests: {line}")
    for line in _figures:
        terminalreporter.write_line(line)
