"""Secure mode of the local broker: SASL/SCRAM logins and the KRaft ``StandardAuthorizer``.

Identities (documented in docs and the README):

- ``User:admin``: the operator (``dfdg acl sync``, ``dfdg acl users add``); super user.
- ``User:broker``: the broker's own identity. It logs in to itself on the client listener
  (SCRAM-SHA-512, inter-broker) and to the controller listener (SASL PLAIN: SCRAM needs the
  metadata log the controller is the source of, so the controller listener cannot use it). It
  is a super user because broker-to-controller requests need CLUSTER_ACTION. The controller
  listener stays on 127.0.0.1 and accepts no anonymous login, so no local process gets
  super-user rights by connecting to it.

Both passwords are made once per broker state directory into ``credentials.json`` (0600, never
in the repo); ``DFDG_KAFKA_ADMIN_PASSWORD`` overrides the admin's. SCRAM credentials are
written into the KRaft bootstrap metadata at storage format time (``--add-scram``), so the
admin can log in from the first start. ``server.properties`` holds the broker's password in
its JAAS lines and is therefore 0600 too.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ADMIN_USER", "BROKER_USER", "MECHANISM", "BrokerCredentials", "listener_lines",
           "scram_format_args", "write_private"]

ADMIN_USER = "admin"
BROKER_USER = "broker"
MECHANISM = "SCRAM-SHA-512"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (created 0600, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@dataclass(frozen=True)
class BrokerCredentials:
    """The admin's and the broker's passwords; ``repr`` hides them."""

    admin_password: str
    broker_password: str

    def __repr__(self) -> str:
        return "BrokerCredentials(admin=***, broker=***)"

    @classmethod
    def load_or_create(cls, state_dir: Path, env: Mapping[str, str] | None = None) -> BrokerCredentials:
        """Read ``credentials.json`` from the state dir, making it (0600) on first use."""
        env = os.environ if env is None else env
        path = state_dir / "credentials.json"
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
        else:
            raw = {ADMIN_USER: secrets.token_urlsafe(24), BROKER_USER: secrets.token_urlsafe(24)}
            state_dir.mkdir(parents=True, exist_ok=True)
            write_private(path, json.dumps(raw, indent=2) + "\n")
        admin = env.get("DFDG_KAFKA_ADMIN_PASSWORD") or str(raw[ADMIN_USER])
        return cls(admin_password=admin, broker_password=str(raw[BROKER_USER]))

    def admin_client_config(self) -> dict[str, Any]:
        """aiokafka keyword arguments that log in as the admin."""
        return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": MECHANISM,
                "sasl_plain_username": ADMIN_USER, "sasl_plain_password": self.admin_password}


def scram_format_args(creds: BrokerCredentials) -> list[str]:
    """``StorageTool format`` arguments that create the admin's and the broker's SCRAM logins.

    They hold passwords: the argv of the short-lived format process is visible to local ``ps``
    for about a second; the state directory is the broker owner's anyway.
    """
    return ["--add-scram", f"{MECHANISM}=[name={ADMIN_USER},password={creds.admin_password}]",
            "--add-scram", f"{MECHANISM}=[name={BROKER_USER},password={creds.broker_password}]"]


def listener_lines(port: int, controller_port: int, creds: BrokerCredentials) -> list[str]:
    """The listener, SASL and authorizer lines of ``server.properties`` for secure mode."""
    bpw = creds.broker_password
    return [
        f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        # Clients: SCRAM only (no PLAIN on the client listener: PLAIN sends the password as is).
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.sasl_plaintext.sasl.enabled.mechanisms={MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={_SCRAM_MODULE} required "
        f'username="{BROKER_USER}" password="{bpw}";',
        # Controller: PLAIN with one static user, the broker itself, on 127.0.0.1 only.
        "sasl.mechanism.controller.protocol=PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={_PLAIN_MODULE} required "
        f'username="{BROKER_USER}" password="{bpw}" user_{BROKER_USER}="{bpw}";',
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN_USER};User:{BROKER_USER}",
    ]
