"""A secure local broker (SASL/SCRAM + StandardAuthorizer) for the session, and its users.

Port: ``DFDG_SECURE_TEST_BROKER_PORT`` (default 32092; controller on the next port). Storage,
credentials and registries are fresh temp files; the pinned jars' cache is shared.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dfdg.acl import Plan
from dfdg.acl_admin import AclAdmin
from dfdg.acl_sync import sync
from dfdg.localbroker.manager import LocalBroker
from processors.subscribers import Registry
from sinks import registry_store

APP_ID = "dfdg-sec"


@dataclass
class SecureKafka:
    """The secure broker, its admin, and the registries the tests change."""

    broker: LocalBroker
    admin: AclAdmin
    state: Path
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def subscribers_file(self) -> Path:
        return self.state / "subscribers.json"

    @property
    def publishers_file(self) -> Path:
        return self.state / "publishers.json"

    def user(self, name: str) -> dict[str, Any]:
        """aiokafka login kwargs for SCRAM user ``name`` (created on first use)."""
        if name not in self.passwords:
            self.passwords[name] = secrets.token_urlsafe(18)
            self.admin.upsert_user(name, self.passwords[name])
        return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": name, "sasl_plain_password": self.passwords[name]}

    def env_for(self, name: str) -> dict[str, str]:
        """The ``KAFKA_*`` environment a process needs to log in as ``name``."""
        self.user(name)
        path = self.state / f"{name}.password"
        path.write_text(self.passwords[name])
        path.chmod(0o600)
        return {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": name, "KAFKA_SASL_PASSWORD_FILE": str(path)}

    def set_registry(self, registry: Registry) -> None:
        registry_store.save(registry, self.subscribers_file)

    def sync(self) -> Plan:
        return sync(self.admin, APP_ID, self.subscribers_file, self.publishers_file)


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    port = int(os.environ.get("DFDG_SECURE_TEST_BROKER_PORT", "32092"))
    state = Path(tempfile.mkdtemp(prefix="dfdg-secure-broker-"))
    broker = LocalBroker(home=state, port=port, controller_port=port + 1, secure=True)
    try:
        broker.start()
    except Exception as exc:  # noqa: BLE001 - a failure with the reason, never a skip
        broker.stop()
        pytest.fail(f"the secure test broker did not start: {exc}")
    sk = SecureKafka(broker, AclAdmin(broker.bootstrap, broker.admin_config(), state), state)
    sk.set_registry(Registry().add("akasse:5").add("akasse:10").add("jobcenter:101"))
    sk.publishers_file.write_text(json.dumps({"publishers": [
        {"id": "fagsystem", "event_types": ["CaseCreated", "HandoverDatePassed"]},
        {"id": "cpr", "event_types": ["CitizenDeceased"]},
        {"id": "absence-gateway", "event_types": ["AbsenceDeleted"]},
    ]}))
    try:
        yield sk
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)
