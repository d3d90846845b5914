"""The ports the tests' own brokers take by default: apart from each other and from the compose
file's host ports, and below Linux's ephemeral range (32768-60999), from which the kernel hands
out the local ports of outgoing connections: a default inside it can be taken by any client's
socket just before a test broker binds it. Read from the sources (the Kafka fixtures themselves
are not imported: this test needs no broker)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EPHEMERAL_FIRST = 32768


def _default(path: str, pattern: str) -> int:
    match = re.search(pattern, (ROOT / path).read_text())
    assert match is not None, f"{path}: no default found for {pattern!r}"
    return int(match.group(1))


def _test_ports() -> dict[str, set[int]]:
    session = _default("tests/kafka_fixture.py", r'"DFDG_TEST_BROKER_PORT", "(\d+)"')
    secure = _default("tests/security/conftest.py", r'"DFDG_SECURE_TEST_BROKER_PORT", "(\d+)"')
    cluster = _default("tests/integration/test_cluster_broker_loss.py", r"TEST_CLUSTER_PORT = (\d+)")
    return {  # each broker and its controller on the next port; the cluster's three nodes +0, +2, +4
        "DFDG_TEST_BROKER_PORT": {session, session + 1},
        "DFDG_SECURE_TEST_BROKER_PORT": {secure, secure + 1},
        "DFDG_TEST_CLUSTER_PORT": set(range(cluster, cluster + 6)),
    }


def test_the_test_brokers_ports_are_below_the_ephemeral_range_and_apart() -> None:
    ports = _test_ports()
    for name, taken in ports.items():
        assert max(taken) < EPHEMERAL_FIRST, f"{name} default reaches {max(taken)}, in the ephemeral range"
    every = [p for taken in ports.values() for p in taken]
    assert len(every) == len(set(every)), ports
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    host = {int(p.split(":")[0]) for s in services.values() for p in s.get("ports", [])}
    assert not host & set(every), "a test broker's default port is also a compose host port"


def test_the_readme_documents_each_test_port_and_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, taken in _test_ports().items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"README's configuration table has no row for {name}"
        assert f"`{min(taken)}`" in row, row
