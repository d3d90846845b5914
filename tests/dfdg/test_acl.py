"""The ACL set computed from the registries (pure; issue 8)."""

from __future__ import annotations

import pytest

from dfdg.acl import (
    Acl,
    AclError,
    desired_acls,
    group_prefix,
    parse_publishers,
    plan,
    principal_for_publisher,
    principal_for_subscriber,
    user_name,
)
from processors.subscribers import Registry

PUBS = parse_publishers({"publishers": [{"id": "cpr", "event_types": ["CitizenDeceased"]}]})


def _of(acls: frozenset[Acl], principal: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource_type, a.name, a.pattern, a.operation) for a in acls if a.principal == principal}


def test_principal_mapping() -> None:
    assert principal_for_subscriber("akasse:5") == "User:akasse-5"
    assert group_prefix("akasse:5") == "akasse.5."
    assert principal_for_publisher("cpr") == "User:publisher-cpr"
    assert user_name("User:akasse-5") == "akasse-5"
    with pytest.raises(AclError):
        principal_for_publisher("CPR system")


def test_subscriber_reads_only_its_topic_and_prefixed_groups() -> None:
    acls = desired_acls(Registry().add("akasse:5").add("akasse:10"), PUBS, "dfdg")
    assert _of(acls, "User:akasse-5") == {
        ("TOPIC", "dfdg.notify.akasse.5", "LITERAL", "READ"),
        ("TOPIC", "dfdg.notify.akasse.5", "LITERAL", "DESCRIBE"),
        # its notification keys (docs/security.md), and nothing of anyone else's
        ("TOPIC", "dfdg.notify-keys.akasse.5", "LITERAL", "READ"),
        ("TOPIC", "dfdg.notify-keys.akasse.5", "LITERAL", "DESCRIBE"),
        ("GROUP", "akasse.5.", "PREFIXED", "READ"),
        ("GROUP", "akasse.5.", "PREFIXED", "DESCRIBE"),
    }


def test_suspended_subscriber_has_no_read_and_resume_restores_it() -> None:
    reg = Registry().add("akasse:5")
    suspended = desired_acls(reg.suspend("akasse:5"), PUBS, "dfdg")
    assert ("TOPIC", "dfdg.notify.akasse.5", "LITERAL", "READ") not in _of(suspended, "User:akasse-5")
    assert ("TOPIC", "dfdg.notify-keys.akasse.5", "LITERAL", "READ") not in _of(suspended, "User:akasse-5")
    resumed = desired_acls(reg.suspend("akasse:5").resume("akasse:5"), PUBS, "dfdg")
    assert resumed == desired_acls(reg, PUBS, "dfdg")
    change = plan(resumed, suspended)
    assert sorted((a.name, a.operation) for a in change.delete) == [
        ("dfdg.notify-keys.akasse.5", "READ"), ("dfdg.notify.akasse.5", "READ")] and change.add == ()


def test_publisher_writes_only_its_event_types() -> None:
    acls = desired_acls(Registry(), PUBS, "dfdg")
    assert _of(acls, "User:publisher-cpr") == {
        ("TOPIC", "dfdg.citizen-deceased", "LITERAL", "WRITE"),
        ("TOPIC", "dfdg.citizen-deceased", "LITERAL", "DESCRIBE"),
        ("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),
    }


def test_unknown_or_duplicate_publisher_is_refused() -> None:
    with pytest.raises(AclError):
        parse_publishers({"publishers": [{"id": "x", "event_types": ["DeadlineDue"]}]})
    with pytest.raises(AclError):
        parse_publishers({"publishers": [{"id": "x", "event_types": []}, {"id": "x", "event_types": []}]})


def test_worker_gets_its_prefixes_and_nothing_for_others() -> None:
    worker = _of(desired_acls(Registry(), PUBS, "myapp"), "User:dfdg-worker")
    assert ("TOPIC", "myapp-", "PREFIXED", "WRITE") in worker
    assert ("TOPIC", "dfdg.", "PREFIXED", "READ") in worker
    assert ("GROUP", "myapp", "PREFIXED", "READ") in worker
    assert ("TRANSACTIONAL_ID", "myapp", "PREFIXED", "WRITE") in worker
    assert ("TOPIC", "myapp.", "PREFIXED", "WRITE") in worker  # the app's internal topics
    assert all(a[1] in {"dfdg.", "myapp-", "myapp.", "myapp", "kafka-cluster"} for a in worker)


def test_plan_adds_missing_removes_extra_and_ignores_admin() -> None:
    keep = Acl("User:a-1", "TOPIC", "t", "LITERAL", "READ")
    stray = Acl("User:mallory", "TOPIC", "dfdg.", "PREFIXED", "READ")
    admin = Acl("User:admin", "TOPIC", "x", "LITERAL", "READ")
    new = Acl("User:b-2", "TOPIC", "u", "LITERAL", "READ")
    change = plan([keep, stray, admin], [keep, new])
    assert change.add == (new,) and change.delete == (stray,)
    assert plan([keep], [keep]).empty
