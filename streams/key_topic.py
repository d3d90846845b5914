"""The key topic followed: per-citizen data keys, wrapped by the master key, read from a
compacted Kafka topic into this process's copy (``streams.key_shelf``) and kept up to date.

Rows are keyed ``<citizen key>:<key id>``: two workers that create a key for the same new
citizen at the same moment both keep theirs (compaction keeps both rows), and every ciphertext
names the key id it was sealed with. A tombstone forgets a key; a ``<citizen key>:erased`` row
marks a citizen deleted after death (R7.3).

The rows are kept wrapped (in a dict, or the worker's own RocksDB) and only a bounded number of
citizens' keys opened, so memory does not grow with the citizens. What makes and shreds keys is
``streams.keystore``; tools that only read keys (a subscriber's) use this alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from sinks.crypto import CryptoError, DataKey
from streams.kafka_auth import client_config
from streams.key_shelf import InMemoryWrappedKeys, OpenedKeys, WrappedKeys, decode_entries, encode_entries
from streams.logs import get_logger

__all__ = ["ERASED_ROW", "KEY_WAIT_S", "OPENED_CITIZENS", "KeyTopic", "KeysUnavailable", "UnknownKey"]

# The key-id part of the row that marks a citizen as deleted after death.
ERASED_ROW = "erased"

log = get_logger("dfdg.keys")


class UnknownKey(LookupError):
    """No such data key: never created here, or shredded."""


class KeysUnavailable(RuntimeError):
    """The key topic could not be read up to date: nothing can be said about a missing key."""


# How long a missing key is looked for in the key topic before the broker is blamed.
KEY_WAIT_S = 30.0

# How many citizens' keys a tool keeps opened; the worker's bound is a setting
# (``DFDG_KEY_CACHE_CITIZENS``, streams.store_policy).
OPENED_CITIZENS = 100_000


Unwrap = Callable[[str, bytes], DataKey]

# A packed key: its id, then its secret.
_ID, _PACKED = 16, 48


def _pack(keys: Iterable[DataKey]) -> bytes:
    packed = b"".join(k.key_id + k.secret for k in keys)
    if len(packed) % _PACKED:
        raise ValueError("a data key is a 16-byte id and a 32-byte secret")
    return packed


def _key_id(key_hex: str) -> bytes | None:
    """A row name's key id (16 bytes, in hex), or None for a name that is not one."""
    try:
        key_id = bytes.fromhex(key_hex)
    except ValueError:
        return None
    return key_id if len(key_id) == _ID else None


def _already(held: Sequence[tuple[bytes, bytes]], key_id: bytes, wrapped: bytes | None) -> bool:
    """Whether ``held`` already is what a row (``None``: a tombstone) for ``key_id`` makes it."""
    if wrapped is None:
        return all(entry[0] != key_id for entry in held)
    return (key_id, wrapped) in held


def _unpack(packed: bytes) -> list[DataKey]:
    return [DataKey(packed[i:i + _ID], packed[i + _ID:i + _PACKED]) for i in range(0, len(packed), _PACKED)]


def _position(packed: bytes, key_id: bytes) -> int:
    """Where the key ``key_id`` starts in ``packed``, or -1 (only at a key's start counts)."""
    for at in range(0, len(packed), _PACKED):
        if packed[at:at + _ID] == key_id:
            return at
    return -1


class KeyTopic:
    """Reads a compacted topic of wrapped data keys (rows ``<citizen key>:<key id hex>``) and
    keeps following it; a tombstone forgets the key. The rows are kept wrapped in ``shelf``,
    and the keys of the ``opened`` citizens used last are kept opened."""

    def __init__(self, bootstrap: str, topic: str, unwrap: Unwrap, shelf: WrappedKeys | None = None,
                 opened: int = OPENED_CITIZENS) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._unwrap = unwrap
        # Per citizen its wrapped keys; citizens deleted after death (R7.3) are marked there too:
        # their ``<citizen key>:erased`` rows outlive the tombstones of their keys, so no worker
        # ever makes them a new key.
        self._shelf: WrappedKeys = shelf if shelf is not None else InMemoryWrappedKeys()
        # Per citizen, its keys opened and packed in one bytes value (``_pack``).
        self._opened = OpenedKeys(opened)
        # How many times the shelf has changed: whoever read it before an await can tell
        # whether what it read may be out of date (``KeyStore.ensure``).
        self._changes = 0
        # A topic wrapped with another master key is refused when read, not at the first use.
        self._unwrap_checked = False
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None
        # Set once the topic has been read to its end, or found not to exist yet: the worker can
        # go on (a topic not created yet holds no keys). ``_read`` is only the former.
        self._loaded = asyncio.Event()
        self._read = False
        # Set, and replaced, each time rows arrive: whoever waits for a key another worker (or
        # the door in its own process) just made wakes when it may be here, not on a poll.
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self._shelf)

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                          enable_auto_commit=False, **client_config())
        await self._consumer.start()
        await self._catch_up()
        self._loaded.set()
        self._follow = asyncio.create_task(self._follow_topic())

    async def _catch_up(self) -> bool:
        """Assign the topic's partitions (if it exists yet) and read them to their end."""
        assert self._consumer is not None
        if not self._consumer.assignment():
            metadata = await self._consumer._client.fetch_all_metadata()
            partitions = metadata.partitions_for_topic(self._topic) or ()
            if not partitions:
                return False
            tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            self._consumer.assign(tps)
            await self._consumer.seek_to_beginning(*tps)
        tps = list(self._consumer.assignment())
        end = await self._consumer.end_offsets(tps)
        while [tp for tp in tps if await self._consumer.position(tp) < end[tp]]:
            self._apply(await self._consumer.getmany(*tps, timeout_ms=500))
        self._read = True
        return True

    async def stop(self) -> None:
        if self._follow:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self._consumer:
            await self._consumer.stop()
        self._read = False  # what was held is gone: a missing key no longer means a shredded one
        self._shelf.close()

    async def ready(self) -> None:
        await self._loaded.wait()

    def loaded(self) -> bool:
        """Whether the topic has been found and read to its end once: only then does a missing
        key mean a shredded one. A topic this client cannot see (not created yet, no DESCRIBE
        right, the wrong cluster) proves nothing about any citizen."""
        return self._read

    async def _follow_topic(self) -> None:
        assert self._consumer is not None
        while not self._consumer.assignment():  # the topic is created when first needed
            if not await self._catch_up():
                await asyncio.sleep(2.0)
        while True:
            self._apply(await self._consumer.getmany(timeout_ms=1000))

    def _apply(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        changed: dict[str, list[tuple[bytes, bytes]]] = {}
        erased: list[str] = []
        for records in batch.values():
            for record in records:
                citizen, _, key_hex = record.key.decode().partition(":")
                if key_hex == ERASED_ROW:
                    erased.append(citizen)
                    changed[citizen] = []
                    continue
                key_id = _key_id(key_hex)
                if key_id is None:
                    log.warning("a key row with a malformed name was skipped", topic=self._topic,
                                partition=record.partition, offset=record.offset)
                    continue
                held = changed[citizen] if citizen in changed else decode_entries(self._shelf.get(citizen))
                if _already(held, key_id, record.value):
                    # A row this process wrote and keeps already (``_keep_all``, ``_forget``), read
                    # back: rewriting it would drop the citizen's opened keys just before the
                    # step that needs them, and every new citizen's key would be unwrapped twice.
                    continue
                held = [entry for entry in held if entry[0] != key_id]
                if record.value is not None:
                    self._check_unwrap(citizen, record.value)
                    held.append((key_id, record.value))
                changed[citizen] = held
        if changed:
            self._write_shelf({citizen: encode_entries(held) for citizen, held in changed.items()})
            for citizen in changed:
                self._opened.drop(citizen)
        if erased:
            self._mark_erased(erased)
        if batch:
            self._arrived.set()
            self._arrived = asyncio.Event()

    def _check_unwrap(self, citizen: str, wrapped: bytes) -> None:
        """The first row read is opened at once: a wrong master key (or subscriber key) fails the
        start, as it always did, not each step that later needs a key."""
        if not self._unwrap_checked:
            self._unwrap(citizen, wrapped)
            self._unwrap_checked = True

    def _packed(self, citizen: str) -> bytes:
        """The citizen's keys opened and packed, from the opened ones or the shelf."""
        packed = self._opened.get(citizen)
        if packed is None:
            held = self._shelf.get(citizen)
            if not held:
                return b""
            try:
                packed = _pack(self._unwrap(citizen, wrapped) for _, wrapped in decode_entries(held))
            except CryptoError as exc:
                # Not a shredded key (that has no row): a row this master key cannot open. Nothing
                # can be said about the citizen until an operator has looked.
                log.error("a data key row does not unwrap with this master key", topic=self._topic)
                raise KeysUnavailable("a data key row of this citizen does not unwrap with this key") from exc
            self._opened.put(citizen, packed)
        return packed

    def _keep_all(self, created: Sequence[tuple[str, DataKey, bytes]], none_held: bool = False) -> None:
        """Keys made here, their rows acknowledged: kept wrapped, and opened for their first use.
        ``none_held``: the shelf has not changed since these citizens were found to have no key
        (their rows are the first), so it need not be read again."""
        changes: dict[str, bytes] = {}
        opened: dict[str, bytes] = {}
        for citizen, key, wrapped in created:
            packed = _pack([key])  # checks the key's shape before anything is kept
            held = [] if none_held else [e for e in decode_entries(self._shelf.get(citizen)) if e[0] != key.key_id]
            changes[citizen] = encode_entries([*held, (key.key_id, wrapped)])
            if not held:
                opened[citizen] = packed
        self._write_shelf(changes)
        for citizen in changes:
            if citizen in opened:
                self._opened.put(citizen, opened[citizen])
            else:
                self._opened.drop(citizen)

    def _write_shelf(self, changes: Mapping[str, bytes]) -> None:
        """Every change to the shelf goes through here or ``_mark_erased``, so ``_changes``
        counts them all."""
        self._shelf.write(changes)
        self._changes += 1

    def _mark_erased(self, citizens: Iterable[str]) -> None:
        self._shelf.mark_erased(citizens)
        self._changes += 1

    def _forget(self, citizen: str, key_id: bytes) -> None:
        held = [e for e in decode_entries(self._shelf.get(citizen)) if e[0] != key_id]
        self._write_shelf({citizen: encode_entries(held)})
        self._opened.drop(citizen)

    def is_erased(self, citizen: str) -> bool:
        return self._shelf.is_erased(citizen)

    def known(self, citizen: str) -> DataKey | None:
        packed = self._packed(citizen)
        if not packed:
            return None
        if len(packed) == _PACKED:
            return DataKey(packed[:_ID], packed[_ID:])
        return min(_unpack(packed), key=lambda k: k.key_id)

    def all_for(self, citizen: str) -> list[DataKey]:
        return _unpack(self._packed(citizen))

    def held_key(self, citizen: str, key_id: bytes) -> DataKey | None:
        """The key with this id, if it is held here now (no wait for the topic: ``key_by_id``)."""
        packed = self._packed(citizen)
        at = _position(packed, key_id)
        return None if at < 0 else DataKey(key_id, packed[at + _ID:at + _PACKED])

    def holds(self, citizen: str, key_id: bytes) -> bool:
        """Whether the key with this id is held here now (``held_key`` without making it)."""
        return _position(self._packed(citizen), key_id) >= 0

    async def key_by_id(self, citizen: str, key_id: bytes, wait_s: float = KEY_WAIT_S) -> DataKey:
        """The key a value was sealed with.

        A key another process has just made (the door in a process of its own, another worker)
        may not have been read here yet. Its row was acknowledged before anything was sealed
        with it, so on a miss this reads the topic up to its end as of now, and only then calls
        the key unknown (``UnknownKey``: shredded, or never created). ``KeysUnavailable`` when
        the topic cannot be read that far within ``wait_s``: a broker problem, not an answer."""
        key = self.held_key(citizen, key_id)
        if key is None:
            try:
                await asyncio.wait_for(self._read_to_now(), wait_s)
            except TimeoutError as exc:
                raise KeysUnavailable(f"the key topic could not be read to its end within {wait_s:.0f} s") from exc
            key = self.held_key(citizen, key_id)
        if key is None:
            raise UnknownKey("no data key with that id: shredded, or never created")
        return key

    def _check_follower(self) -> None:
        if self._follow is not None and self._follow.done():
            # Nothing reads the topic any more: no wait would end. Say why, once per miss.
            failure = None if self._follow.cancelled() else self._follow.exception()
            log.error("the key topic is no longer followed",
                      error=type(failure).__name__ if failure is not None else "cancelled")
            raise KeysUnavailable("the key topic's follower has stopped")

    async def _read_to_now(self) -> None:
        """Until every row written to the topic before this call has been applied here."""
        await self._loaded.wait()
        consumer = self._consumer
        assert consumer is not None, "start() first"
        # A topic this client cannot see yet proves nothing (``loaded``): the key being looked for
        # was acknowledged on it, so the follower, which looks for the topic every 2 s, will find it.
        while not consumer.assignment():
            self._check_follower()
            await asyncio.sleep(0.2)
        tps = list(consumer.assignment())
        end = await consumer.end_offsets(tps)
        while True:
            self._check_follower()
            arrived = self._arrived  # taken before the check, so an arrival in between is not missed
            # The follower applies what it polled before it can poll again, so a position at the
            # end means every row before it is in memory.
            if all([await consumer.position(tp) >= end[tp] for tp in tps]):
                return
            await arrived.wait()
