"""Where the tests get a real Kafka broker from, in order of preference:

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (an existing cluster);
2. a testcontainers Kafka container when a Docker daemon answers (a user's laptop);
3. the local broker (``dfdg.localbroker``) on a test port with fresh storage (CI, this machine).

There is no fallback after that: a test that needs Kafka fails and says why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KafkaForTests:
    bootstrap: str
    description: str


def _docker_answers() -> bool:
    if shutil.which("docker") is None and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - no daemon, no permission, no socket: all mean "no Docker"
        return False


@contextmanager
def kafka_for_tests() -> Iterator[KafkaForTests]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        yield KafkaForTests(servers, f"existing cluster at {servers} (KAFKA_BOOTSTRAP_SERVERS)")
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            servers = container.get_bootstrap_server()
            yield KafkaForTests(servers, f"testcontainers apache/kafka:4.1.1 at {servers}")
        return
    from dfdg.localbroker.manager import LocalBroker, kafka_version

    port = int(os.environ.get("DFDG_TEST_BROKER_PORT", "19092"))
    # Storage is fresh per session (a temp dir); the pinned jars' cache (DFDG_JARS_DIR) is shared.
    state = Path(tempfile.mkdtemp(prefix="dfdg-test-broker-"))
    broker = LocalBroker(home=state, port=port, controller_port=port + 1)
    try:
        broker.start()
        yield KafkaForTests(broker.bootstrap, f"local Apache Kafka {kafka_version()} (KRaft) at {broker.bootstrap}")
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)
