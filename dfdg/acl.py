"""Who may read and write what on the broker, computed from the registries: pure, no I/O.

Principals (one SCRAM user each; the mapping is injective because roles contain no ``-``):

- subscriber ``<role>:<id>`` -> ``User:<role>-<id>`` (``akasse:5`` -> ``User:akasse-5``). It may
  READ/DESCRIBE only its topic ``dfdg.notify.<role>.<id>`` and use only consumer groups with
  the prefix ``<role>.<id>.`` (``akasse.5.default``, ``akasse.5.webhooks``, ...). A subscriber
  that is not ``active`` loses READ on its topic (its notifications are held, not dropped);
  resuming it restores READ and it reads on from its committed offset. The archive
  (``archive:*``) also WRITEs receipts to ``dfdg.archive-receipts``.
- publisher system ``<system>`` -> ``User:publisher-<system>``: WRITE/DESCRIBE on the ingress
  topics of the event types it is registered for (``config/publishers.json``), and
  IDEMPOTENT_WRITE on the cluster (``dfdg publish`` uses an idempotent producer).
- the worker ``User:dfdg-worker``: everything under ``dfdg.`` and ``<app_id>-`` (its changelog
  and repartition topics), consumer groups and transactional ids prefixed ``<app_id>``.
- the admin (``User:admin``) and the broker (``User:broker``) are super users: no ACLs.

``plan`` diffs the broker's ACLs against this set: the registries are the only source, so an
ACL added by hand is removed by the next ``dfdg acl sync``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from processors.events import EVENT_TYPES, topic_for
from processors.routing import TOPIC_PREFIX, parse_subscriber_id, topic_for_subscriber
from processors.subscribers import Registry
from schemas.topics import archive_receipts_topic
from sinks.notify_keys import notify_keys_topic

__all__ = [
    "ADMIN_PRINCIPAL",
    "WORKER_PRINCIPAL",
    "Acl",
    "AclError",
    "Plan",
    "Publishers",
    "desired_acls",
    "group_prefix",
    "parse_publishers",
    "plan",
    "principal_for_publisher",
    "principal_for_subscriber",
    "user_name",
]

ADMIN_PRINCIPAL = "User:admin"
WORKER_PRINCIPAL = "User:dfdg-worker"
_SYSTEM = re.compile(r"[a-z][a-z0-9-]{0,39}")
_EVENT_NAMES = {t.__name__: t for t in EVENT_TYPES}

Publishers = Mapping[str, frozenset[str]]  # system id -> event type names it may publish


class AclError(ValueError):
    """An invalid publisher registry or principal name."""


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One ALLOW binding, in the broker's own words (resource type, pattern type, operation)."""

    principal: str
    resource_type: str  # TOPIC | GROUP | CLUSTER | TRANSACTIONAL_ID
    name: str
    pattern: str  # LITERAL | PREFIXED
    operation: str  # READ | WRITE | CREATE | DESCRIBE | DESCRIBE_CONFIGS | IDEMPOTENT_WRITE ...
    permission: str = "ALLOW"
    host: str = "*"

    def describe(self) -> str:
        """One short human line: ``User:akasse-5 READ TOPIC dfdg.notify.akasse.5 (LITERAL)``."""
        return f"{self.principal} {self.operation} {self.resource_type} {self.name} ({self.pattern})"


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``acl sync`` must change: ACLs to create and ACLs to delete, each sorted."""

    add: tuple[Acl, ...]
    delete: tuple[Acl, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.delete


def user_name(principal: str) -> str:
    """``User:akasse-5`` -> ``akasse-5`` (the SCRAM user name)."""
    kind, _, name = principal.partition(":")
    if kind != "User" or not name:
        raise AclError(f"{principal!r} is not a User: principal")
    return name


def principal_for_subscriber(sub_id: str) -> str:
    """``akasse:5`` -> ``User:akasse-5``."""
    role, ident = parse_subscriber_id(sub_id)
    return f"User:{role}-{ident}"


def group_prefix(sub_id: str) -> str:
    """The consumer-group prefix a subscriber may use: ``akasse:5`` -> ``akasse.5.``."""
    role, ident = parse_subscriber_id(sub_id)
    return f"{role}.{ident}."


def principal_for_publisher(system: str) -> str:
    """``jobcenter-case-system`` -> ``User:publisher-jobcenter-case-system``."""
    if not _SYSTEM.fullmatch(system):
        raise AclError(f"publisher id {system!r} must be lower-case letters, digits and '-'")
    return f"User:publisher-{system}"


def parse_publishers(raw: Mapping[str, Any]) -> Publishers:
    """``{"publishers": [{"id": ..., "event_types": [...]}]}`` -> system -> event type names."""
    out: dict[str, frozenset[str]] = {}
    for item in raw.get("publishers", []):
        system = str(item["id"])
        principal_for_publisher(system)
        if system in out:
            raise AclError(f"publisher {system} is listed twice")
        types = frozenset(str(t) for t in item.get("event_types", []))
        unknown = sorted(types - _EVENT_NAMES.keys())
        if unknown:
            raise AclError(f"publisher {system}: unknown event types {unknown}; known: {sorted(_EVENT_NAMES)}")
        out[system] = types
    return MappingProxyType(out)


def _grants(principal: str, resource_type: str, name: str, pattern: str, ops: Iterable[str]) -> set[Acl]:
    return {Acl(principal, resource_type, name, pattern, op) for op in ops}


def _subscriber_acls(registry: Registry, app_id: str) -> set[Acl]:
    acls: set[Acl] = set()
    for sub in registry.values():
        who = principal_for_subscriber(sub.id)
        topic = topic_for_subscriber(sub.id)
        acls |= _grants(who, "TOPIC", topic, "LITERAL", ["DESCRIBE"])
        acls |= _grants(who, "GROUP", group_prefix(sub.id), "PREFIXED", ["READ", "DESCRIBE"])
        keys = notify_keys_topic(sub.id)
        acls |= _grants(who, "TOPIC", keys, "LITERAL", ["DESCRIBE"])
        if sub.state == "active":
            acls |= _grants(who, "TOPIC", topic, "LITERAL", ["READ"])
            acls |= _grants(who, "TOPIC", keys, "LITERAL", ["READ"])
            if parse_subscriber_id(sub.id)[0] == "archive":
                acls |= _grants(who, "TOPIC", archive_receipts_topic(app_id), "LITERAL", ["WRITE"])
    return acls


def _publisher_acls(publishers: Publishers) -> set[Acl]:
    acls: set[Acl] = set()
    for system, types in publishers.items():
        who = principal_for_publisher(system)
        for name in types:
            acls |= _grants(who, "TOPIC", topic_for(_EVENT_NAMES[name]), "LITERAL", ["WRITE", "DESCRIBE"])
        if types:
            acls |= _grants(who, "CLUSTER", "kafka-cluster", "LITERAL", ["IDEMPOTENT_WRITE"])
    return acls


def _worker_acls(app_id: str, principal: str) -> set[Acl]:
    topic_ops = ["READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS"]
    # "dfdg." covers ingress, internal, output and every dfdg.notify.* topic (created on demand).
    acls = _grants(principal, "TOPIC", TOPIC_PREFIX.split(".")[0] + ".", "PREFIXED", topic_ops)
    acls |= _grants(principal, "TOPIC", f"{app_id}-", "PREFIXED", topic_ops)  # Faust's table changelogs
    acls |= _grants(principal, "TOPIC", f"{app_id}.", "PREFIXED", topic_ops)  # the app's internal topics
    acls |= _grants(principal, "GROUP", app_id, "PREFIXED", ["READ", "DESCRIBE"])
    acls |= _grants(principal, "TRANSACTIONAL_ID", app_id, "PREFIXED", ["WRITE", "DESCRIBE"])
    acls |= _grants(principal, "CLUSTER", "kafka-cluster", "LITERAL", ["IDEMPOTENT_WRITE", "DESCRIBE"])
    return acls


def desired_acls(registry: Registry, publishers: Publishers, app_id: str,
                 worker_principal: str = WORKER_PRINCIPAL) -> frozenset[Acl]:
    """Every ACL the broker should hold for these registries and this worker app id."""
    return frozenset(_subscriber_acls(registry, app_id) | _publisher_acls(publishers)
                     | _worker_acls(app_id, worker_principal))


def plan(current: Iterable[Acl], desired: Iterable[Acl]) -> Plan:
    """The changes that turn ``current`` into ``desired``; ACLs of super users are left alone."""
    have = {a for a in current if a.principal != ADMIN_PRINCIPAL}
    want = set(desired)
    return Plan(add=tuple(sorted(want - have)), delete=tuple(sorted(have - want)))
