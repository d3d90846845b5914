"""How the key store keeps the rows of its topic in memory (packed, one bytes value per
citizen): what it answers for one key, two keys (two workers raced), a tombstone and an
erased row. The rows are fed as the follower hands them over; no broker is involved."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sinks.crypto import DataKey, MasterKey
from streams.key_topic import KeyTopic

MASTER = MasterKey(MasterKey.DEV_KEY)


@dataclass
class _Row:
    key: bytes
    value: bytes | None


def _store() -> KeyTopic:
    return KeyTopic("unused:9092", "keys", lambda citizen, wrapped: MASTER.unwrap(wrapped, citizen.encode()))


def _row(citizen: str, key: DataKey) -> _Row:
    return _Row(f"{citizen}:{key.key_id.hex()}".encode(), MASTER.wrap(key, citizen.encode()))


def test_one_key_two_keys_a_tombstone_and_an_erased_citizen() -> None:
    store = _store()
    first, second = sorted((DataKey.generate(), DataKey.generate()), key=lambda k: k.key_id)
    store._apply({"tp": [_row("c-1", second)]})
    assert store.known("c-1") == second
    store._apply({"tp": [_row("c-1", first), _row("c-1", first)]})  # a replayed row is kept once
    assert store.known("c-1") == first  # the lowest id, on every worker alike
    assert sorted(store.all_for("c-1"), key=lambda k: k.key_id) == [first, second]
    store._apply({"tp": [_Row(f"c-1:{first.key_id.hex()}".encode(), None)]})
    assert store.all_for("c-1") == [second]
    store._apply({"tp": [_Row(b"c-1:erased", b"erased")]})
    assert store.known("c-1") is None and store.is_erased("c-1") and len(store) == 0


async def test_a_key_held_here_is_found_without_reading_the_topic() -> None:
    store = _store()
    key = DataKey.generate()
    store._apply({"tp": [_row("c-2", key)]})
    assert await store.key_by_id("c-2", key.key_id) == key


def test_a_key_that_is_not_48_bytes_is_refused() -> None:
    store = _store()
    with pytest.raises(ValueError, match="16-byte id and a 32-byte secret"):
        store._keep_all([("c-3", DataKey(b"short", b"x" * 32), b"wrapped")])
