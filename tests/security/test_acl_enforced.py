"""The secure broker enforces the ACLs ``dfdg acl sync`` derives from the registries (issue 8)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from processors.subscribers import Registry
from tests.security.conftest import APP_ID, SecureKafka
from tests.security.kafka_io import create_topics, read, write

A5, A10 = "dfdg.notify.akasse.5", "dfdg.notify.akasse.10"
INTERNAL, CHANGELOG = f"{APP_ID}.internal.citizen-events", f"{APP_ID}-citizens-changelog"  # the one table
CASE_CREATED, DECEASED = "dfdg.case-created", "dfdg.citizen-deceased"


@pytest.fixture(scope="module")
def synced(secure_kafka: SecureKafka) -> SecureKafka:
    admin = secure_kafka.broker.admin_config()
    asyncio.run(create_topics(secure_kafka.bootstrap, admin, [A5, A10, INTERNAL, CHANGELOG, CASE_CREATED, DECEASED]))
    for topic in (A5, A10, INTERNAL, CHANGELOG, CASE_CREATED):
        asyncio.run(write(secure_kafka.bootstrap, admin, topic, f"on {topic}".encode()))
    secure_kafka.sync()
    return secure_kafka


def test_akasse_reads_its_own_topic_in_its_own_group(synced: SecureKafka) -> None:
    got = asyncio.run(read(synced.bootstrap, synced.user("akasse-5"), A5, "akasse.5.own"))
    assert got == [f"on {A5}".encode()]


@pytest.mark.parametrize("topic", [A10, INTERNAL, CHANGELOG, CASE_CREATED])
def test_akasse_a_is_refused_other_topics(synced: SecureKafka, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(read(synced.bootstrap, synced.user("akasse-5"), topic, f"akasse.5.probe-{topic}"))


def test_akasse_is_refused_a_group_outside_its_prefix(synced: SecureKafka) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(read(synced.bootstrap, synced.user("akasse-5"), A5, "akasse.10.stolen"))


def test_akasse_cannot_write_ingress(synced: SecureKafka) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write(synced.bootstrap, synced.user("akasse-5"), CASE_CREATED, b"forged"))


def test_publisher_writes_its_own_event_type_only(synced: SecureKafka) -> None:
    cpr = synced.user("publisher-cpr")
    asyncio.run(write(synced.bootstrap, cpr, DECEASED, b"deceased"))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write(synced.bootstrap, cpr, CASE_CREATED, b"not mine"))
    got = asyncio.run(read(synced.bootstrap, synced.broker.admin_config(), DECEASED, "admin.check"))
    assert got == [b"deceased"]


def test_wrong_password_is_an_authentication_failure(synced: SecureKafka, caplog: pytest.LogCaptureFixture) -> None:
    good = synced.user("akasse-5")
    bad = {**good, "sasl_plain_password": good["sasl_plain_password"] + "x"}
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(read(synced.bootstrap, bad, A5, "akasse.5.badpw", timeout_s=3))
    assert any("SaslAuthenticationFailed" in r.getMessage() for r in caplog.records)
    assert good["sasl_plain_password"] not in caplog.text


def test_suspend_revokes_read_and_resume_restores_it(synced: SecureKafka) -> None:
    registry = Registry().add("akasse:5").add("akasse:10").add("jobcenter:101")
    login = synced.user("akasse-10")
    try:
        synced.set_registry(registry.suspend("akasse:10"))
        revoked = synced.sync()
        assert sorted((a.name, a.operation) for a in revoked.delete if a.principal == "User:akasse-10") == [
            ("dfdg.notify-keys.akasse.10", "READ"), ("dfdg.notify.akasse.10", "READ")]
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(read(synced.bootstrap, login, A10, "akasse.10.main"))
        asyncio.run(write(synced.bootstrap, synced.broker.admin_config(), A10, b"held while suspended"))
    finally:
        synced.set_registry(registry)
        synced.sync()
    got = asyncio.run(read(synced.bootstrap, login, A10, "akasse.10.main"))
    assert got == [f"on {A10}".encode(), b"held while suspended"]


def test_sync_is_idempotent(synced: SecureKafka) -> None:
    assert synced.sync().empty
