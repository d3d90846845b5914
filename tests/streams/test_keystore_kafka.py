"""A key topic this client cannot see proves nothing about any citizen: ``loaded()`` is true
only once the topic has been found and read to its end (a webhook replay otherwise took every
held delivery for a deleted citizen's and removed it)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sinks.crypto import MasterKey
from streams.keystore import KeyStore

pytestmark = pytest.mark.kafka


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()


async def test_a_key_topic_not_there_is_not_loaded_until_it_appears_and_is_read(bootstrap: str,
                                                                                 unique: str) -> None:
    topic = f"keys-{unique}"
    master = MasterKey(MasterKey.DEV_KEY)
    reader = KeyStore(bootstrap, topic, master)
    await reader.start()
    try:
        await asyncio.wait_for(reader.ready(), 10)  # the worker goes on: no topic, no keys yet
        assert not reader.loaded()
        await _create_topic(bootstrap, topic)
        writer = KeyStore(bootstrap, topic, master)
        await writer.start()
        try:
            assert await writer.ensure(["c-one"]) == 1
        finally:
            await writer.stop()
        for _ in range(100):  # the reader follows the topic once it exists
            if reader.loaded() and reader.known("c-one") is not None:
                break
            await asyncio.sleep(0.1)
        assert reader.loaded() and reader.known("c-one") is not None
    finally:
        await reader.stop()


async def test_a_key_made_elsewhere_is_found_at_once_and_a_missing_one_is_unknown_not_late(
        bootstrap: str, unique: str) -> None:
    """The door in its own process makes a key and seals an event with it; the steps' store may
    not have polled the row yet. ``key_by_id`` reads the topic to its end before it answers: the
    key is found, and a key that was never made is ``UnknownKey`` (an answer), not a timeout."""
    from streams.keystore import UnknownKey

    topic = f"keys-{unique}"
    await _create_topic(bootstrap, topic)
    master = MasterKey(MasterKey.DEV_KEY)
    reader, writer = KeyStore(bootstrap, topic, master), KeyStore(bootstrap, topic, master)
    await reader.start()
    await writer.start()
    try:
        for n in range(20):
            citizen = f"c-{n}"
            await writer.ensure([citizen])
            made = writer.known(citizen)
            assert made is not None
            found = await reader.key_by_id(citizen, made.key_id, wait_s=30.0)
            assert found.secret == made.secret
        with pytest.raises(UnknownKey):
            await reader.key_by_id("c-never", b"\x00" * 16, wait_s=30.0)
    finally:
        await writer.stop()
        await reader.stop()
