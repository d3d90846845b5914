"""``dfdg acl sync``: make the broker's ACLs what the registries say, and log every change.

Desired set: ``dfdg.acl.desired_acls`` from ``config/subscribers.json`` (``DFDG_SUBSCRIBERS_FILE``)
and ``config/publishers.json`` (``DFDG_PUBLISHERS_FILE``) for the worker app ``DFDG_APP_ID``.
The admin's login: ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_*`` when set (``streams.kafka_auth``),
else the local secure broker's own admin credentials (``DFDG_BROKER_SECURE=1``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dfdg.acl import Plan, Publishers, desired_acls, parse_publishers, plan
from dfdg.acl_admin import AclAdmin
from sinks import registry_store
from streams.kafka_auth import client_config
from streams.logs import get_logger

__all__ = ["PUBLISHERS_ENV", "admin_from_env", "load_publishers", "publishers_path", "sync"]

PUBLISHERS_ENV = "DFDG_PUBLISHERS_FILE"
DEFAULT_PUBLISHERS = Path(__file__).resolve().parent.parent / "config" / "publishers.json"
log = get_logger("dfdg.acl")


def publishers_path(path: Path | str | None = None) -> Path:
    """``path``, else ``$DFDG_PUBLISHERS_FILE``, else ``config/publishers.json``."""
    return Path(path) if path is not None else Path(os.environ.get(PUBLISHERS_ENV) or DEFAULT_PUBLISHERS)


def load_publishers(path: Path | str | None = None) -> Publishers:
    """The publisher registry; a missing file means no publisher may write."""
    p = publishers_path(path)
    if not p.exists():
        return parse_publishers({})
    return parse_publishers(json.loads(p.read_text(encoding="utf-8")))


def admin_from_env(env: Mapping[str, str] | None = None) -> AclAdmin:
    """An ``AclAdmin`` for ``KAFKA_BOOTSTRAP_SERVERS`` logged in as configured (see module doc)."""
    env = os.environ if env is None else env
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    auth: dict[str, Any] = client_config(env)
    if auth["security_protocol"] == "PLAINTEXT" and env.get("DFDG_BROKER_SECURE", "") in {"1", "true", "yes"}:
        from dfdg.localbroker import broker_from_env

        broker = broker_from_env()
        bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
        auth = broker.admin_config()
    return AclAdmin(bootstrap, auth)


def sync(admin: AclAdmin, app_id: str, subscribers_file: Path | str | None = None,
         publishers_file: Path | str | None = None, dry_run: bool = False, actor: str = "") -> Plan:
    """Diff the broker's ACLs against the registries and (unless ``dry_run``) apply the difference."""
    desired = desired_acls(registry_store.load(subscribers_file), load_publishers(publishers_file), app_id)
    changes = plan(admin.list_acls(), desired)
    actor = actor or os.environ.get("USER", "unknown")
    when = datetime.now(UTC).isoformat()
    for verb, acls in (("grant", changes.add), ("revoke", changes.delete)):
        for acl in acls:
            log.info(f"acl.{verb}" + (".planned" if dry_run else ""), actor=actor, at=when,
                     principal=acl.principal, operation=acl.operation, resource_type=acl.resource_type,
                     resource=acl.name, pattern=acl.pattern)
    if not dry_run:
        admin.apply(changes.add, changes.delete)
    log.info("acl.sync", actor=actor, at=when, dry_run=dry_run, granted=len(changes.add),
             revoked=len(changes.delete), desired=len(desired))
    return changes
