"""The pipeline's own data keys: made on a citizen's first use, shredded on deletion.

Every worker follows the key topic (``streams.key_topic``), so a key one worker creates is soon
known to all. Shredding writes a tombstone for each of the citizen's rows: compaction then
removes the wrapped keys from the log, and every sealed copy anywhere becomes unreadable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaProducer

from sinks.crypto import DataKey, MasterKey
from streams.kafka_auth import client_config
from streams.key_shelf import WrappedKeys
from streams.key_topic import ERASED_ROW, OPENED_CITIZENS, KeysUnavailable, KeyTopic, UnknownKey
from streams.logs import get_logger
from streams.outbox import Outbox

# What the store's callers catch, and the erased row's name, are re-exported from the topic.
__all__ = ["ERASED_ROW", "KeyStore", "KeysUnavailable", "UnknownKey"]

log = get_logger("dfdg.keys")


Send = Callable[[str, bytes, bytes | None], Awaitable[object]]


class KeyStore(KeyTopic):
    """The pipeline's own key topic: creates keys on first use and shreds them on deletion.

    In the worker, key rows go out through the worker's own sender (``send``): ``ensure`` makes
    a batch's new keys in one round trip of their own, and no key is used before the broker has
    acknowledged its row, so nothing sealed with a key is ever durable without it. If the worker
    dies in between, its input is processed again and gets a key again. Tools without a worker
    write and wait."""

    def __init__(self, bootstrap: str, topic: str, master: MasterKey, send: Send | None = None,
                 shelf: WrappedKeys | None = None, opened: int = OPENED_CITIZENS) -> None:
        super().__init__(bootstrap, topic, lambda citizen, wrapped: master.unwrap(wrapped, citizen.encode()),
                         shelf, opened)
        self._master = master
        self._send = send
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._send is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", **client_config())
            await self._producer.start()
        await super().start()
        log.info("data keys loaded", citizens=len(self))

    async def stop(self) -> None:
        await super().stop()
        if self._producer:
            await self._producer.stop()

    async def key_for(self, citizen: str) -> DataKey:
        """The citizen's data key, created (durably, before first use) when there is none."""
        if (key := self.known(citizen)) is None:
            await self.ensure((citizen,))
            if (key := self.known(citizen)) is None:
                raise UnknownKey("the citizen has been deleted: no new data key is made for them")
        return key

    async def ensure(self, citizens: Iterable[str]) -> int:
        """Make sure each citizen has a data key, creating the missing ones in one round trip:
        a new key is used only after the broker has acknowledged its row. Returns how many."""
        wanted = [c for c in dict.fromkeys(citizens) if self.known(c) is None and not self.is_erased(c)]
        if not wanted:
            return 0
        seen = self._changes
        async with self._lock:
            created: list[tuple[str, DataKey, bytes]] = []
            with Outbox() as box:
                # Read again only if keys were made or read while this waited for the lock.
                missing = wanted if self._changes == seen else [c for c in wanted if self.known(c) is None]
                seen = self._changes
                for citizen, key in zip(missing, DataKey.generate_many(len(missing)), strict=True):
                    wrapped = self._master.wrap(key, citizen.encode())
                    await self.put(citizen, key.key_id, wrapped)
                    created.append((citizen, key, wrapped))
                await box.acknowledged()
            # Erased meanwhile (the erased row arrived, or a saga here shredded them, while the
            # rows were on their way): such a key is never used, and is tombstoned, so the
            # topic keeps no key of a deleted citizen (R7.3).
            erased = [self.is_erased(citizen) for citizen, _, _ in created]
            if any(erased):
                for (citizen, key, _), gone in zip(created, erased, strict=True):
                    if gone:
                        await self.put(citizen, key.key_id, None)
                erased = [self.is_erased(citizen) for citizen, _, _ in created]  # or while those went out
            kept = [made for made, gone in zip(created, erased, strict=True) if not gone]
            self._keep_all(kept, none_held=self._changes == seen)
            return len(kept)

    async def put(self, row_citizen: str, key_id: bytes, wrapped: bytes | None, topic: str | None = None) -> None:
        """Write one key row (``None``: a tombstone) to this topic or another key topic."""
        await self._write(topic or self._topic, f"{row_citizen}:{key_id.hex()}".encode(), wrapped)

    async def _write(self, topic: str, row: bytes, value: bytes | None) -> None:
        if self._send is not None:
            await self._send(topic, row, value)
            return
        assert self._producer is not None
        await self._producer.send_and_wait(topic, value, key=row)

    async def shred(self, citizen: str) -> int:
        """Destroy every data key of the citizen and mark them erased; returns how many keys."""
        keys = [k.key_id for k in self.all_for(citizen)]
        for key_id in keys:
            await self.put(citizen, key_id, None)
            self._forget(citizen, key_id)
        await self._write(self._topic, f"{citizen}:{ERASED_ROW}".encode(), ERASED_ROW.encode())
        self._mark_erased([citizen])
        return len(keys)
