"""When the worker publishes a recipient's notify key (the row that lets it open the personal
part of its notifications): once per citizen and recipient, and again after the cache that
remembers it is cleared (a key row is sent first and never taken back, see ``Outbox``)."""

from __future__ import annotations

from typing import Any

import streams.sealing as sealing
from sinks.crypto import DataKey, MasterKey
from streams.keystore import KeyStore
from streams.sealing import Sealer


def _sealer() -> tuple[Sealer, list[tuple[str, bytes, Any]]]:
    rows: list[tuple[str, bytes, Any]] = []

    async def send(topic: str, row: bytes, value: bytes | None) -> None:
        rows.append((topic, row, value))

    keys = KeyStore("unused:9092", "keys", MasterKey(MasterKey.DEV_KEY), send=send)
    for citizen in ("c-1", "c-2"):
        keys._keep(citizen, DataKey.generate())
    return Sealer(keys, dev_mode=True), rows


async def test_a_notify_key_is_published_once_per_citizen_and_recipient() -> None:
    sealer, rows = _sealer()
    for n in range(3):
        await sealer.seal_personal("c-1", "jobcenter:851", f"n-{n}", {"cpr": "x"})
    assert len(rows) == 1 and rows[0][0] == "dfdg.notify-keys.jobcenter.851"
    await sealer.seal_personal("c-1", "akasse:24", "n-9", {"cpr": "x"})
    assert len(rows) == 2  # another recipient, another key


async def test_the_published_cache_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(sealing, "PUBLISHED_CACHE", 1)
    sealer, rows = _sealer()
    await sealer.seal_personal("c-1", "jobcenter:851", "n-1", {"cpr": "x"})
    await sealer.seal_personal("c-2", "jobcenter:851", "n-2", {"cpr": "x"})  # clears c-1's
    await sealer.seal_personal("c-1", "jobcenter:851", "n-3", {"cpr": "x"})
    assert len(rows) == 3 and len(sealer._published) == 1
    assert rows[2][1] == rows[0][1]  # published again under the same row key: compaction keeps one
