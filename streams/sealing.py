"""What the worker seals before it writes to Kafka, and how it opens it again.

One place decides the associated data of each kind of sealed value, so a value sealed for
one purpose (an event, a state row, a notification, a dead letter) never opens as another.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from sinks.crypto import is_sealed, open_sealed, seal, sealed_key_id
from sinks.notify_keys import (
    notify_key_for,
    notify_keys_topic,
    personal_aad,
    subscriber_kek,
    wrap_for_subscriber,
)
from streams.keystore import KeyStore, UnknownKey
from streams.origin import Origin, origin_headers, pack_envelope, strip_origin

# A subscriber's key-encryption key is read once a minute at most, not for every new citizen
# it is told about (a file read and, in dev mode, a derivation). A replaced KEK file wraps new
# keys within this many seconds; keys wrapped before stay wrapped with the old KEK (there is
# no re-wrapping, so a KEK is not rotated by replacing its file).
KEK_REFRESH_S = 60.0

__all__ = ["Sealer", "UnknownKey", "dead_letter_owner", "event_aad", "origin_aad", "state_aad"]


def event_aad(owner: str) -> bytes:
    return f"event|{owner}".encode()


def state_aad(citizen: str) -> bytes:
    return f"state|{citizen}".encode()


def origin_aad(owner: str) -> bytes:
    return f"origin|{owner}".encode()


def dead_letter_owner(topic: str, partition: int, offset: int) -> str:
    """The key owner (and the dead letter's key) of a letter that names no citizen (it could not
    be decoded): a digest of its coordinates, the same on every replay of the door's batch."""
    return "dlq-" + hashlib.sha256(f"{topic}|{partition}|{offset}".encode()).hexdigest()[:32]


class Sealer:
    def __init__(self, keys: KeyStore, dev_mode: bool) -> None:
        self.keys = keys
        self._dev_mode = dev_mode
        self._keks: dict[str, tuple[float, bytes]] = {}
        self._forgetters: list[Callable[[str], None]] = []

    async def start(self) -> None:
        await self.keys.start()

    async def stop(self) -> None:
        await self.keys.stop()

    # ---- events and dead letters ----

    async def seal_event(self, owner: str, raw: bytes) -> bytes:
        return seal(await self.keys.key_for(owner), raw, event_aad(owner))

    async def open_event(self, owner: str, value: bytes) -> bytes:
        """The original bytes (unsealed values, e.g. ``DeadlineDue``, pass through).
        Raises ``UnknownKey`` for a citizen who has been deleted."""
        if not is_sealed(value):
            return value
        key = await self.keys.key_by_id(owner, sealed_key_id(value))
        return open_sealed(key, value, event_aad(owner))

    def holds_key(self, owner: str, value: bytes) -> bool:
        """Whether the key ``value`` was sealed with is held here now (not shredded): what
        ``open_event`` needs, without waiting for the key topic."""
        return is_sealed(value) and self.keys.holds(owner, sealed_key_id(value))

    async def seal_origin(self, owner: str, key: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bytes:
        """The publisher's key and headers (``streams.origin``), sealed like the value they came with."""
        return seal(await self.keys.key_for(owner), pack_envelope(key, headers), origin_aad(owner))

    async def origin_headers_for(self, owner: str, msg: Any) -> list[tuple[str, bytes]]:
        """The headers the door puts on an ingress message passed on: where it came from, in
        clear, and the publisher's key and headers sealed for ``owner`` (never in clear)."""
        sealed = await self.seal_origin(owner, msg.key, strip_origin(msg.headers or ()))
        return origin_headers(Origin(msg.topic, msg.partition, msg.offset, round(msg.timestamp * 1000), sealed))

    # ---- state rows ----

    async def seal_state(self, citizen: str, data: bytes) -> bytes:
        return seal(await self.keys.key_for(citizen), data, state_aad(citizen))

    async def open_state(self, citizen: str, value: bytes) -> bytes:
        if not is_sealed(value):
            return value
        key = await self.keys.key_by_id(citizen, sealed_key_id(value))
        return open_sealed(key, value, state_aad(citizen))

    # ---- notifications ----

    async def seal_personal(self, citizen: str, recipient: str, notification_id: str,
                            personal: dict[str, str], published: set[str]) -> bytes:
        """The personal part sealed for ``recipient``, its notify key published first unless
        ``published`` (the ids the citizen's row keeps, ``Citizen.published``) has it; a newly
        published id is added there, and reaches the row with the batch, after the key row is
        acknowledged. A key published twice (a batch replayed) is harmless: the same key under
        the same row key of a compacted topic."""
        key = notify_key_for(await self.keys.key_for(citizen), recipient)
        key_id = key.key_id.hex()
        if key_id not in published:
            # Sent as a key row (first=True): acknowledged before the notification that needs it.
            wrapped = wrap_for_subscriber(self._kek(recipient), key, citizen, recipient)
            await self.keys.put(citizen, key.key_id, wrapped, topic=notify_keys_topic(recipient))
            published.add(key_id)
        # Compact UTF-8 JSON, as ``json.dumps(..., separators=(",", ":"))`` reads back; orjson
        # takes a tenth of the stdlib's time, and this runs for every notification.
        return seal(key, orjson.dumps(personal), personal_aad(notification_id))

    def _kek(self, recipient: str) -> bytes:
        now = time.monotonic()
        cached = self._keks.get(recipient)
        if cached is None or now - cached[0] > KEK_REFRESH_S:
            cached = self._keks[recipient] = (now, subscriber_kek(recipient, self._dev_mode))
        return cached[1]

    # ---- deletion ----

    async def shred_recipient_keys(self, citizen: str, recipients: Iterable[str]) -> None:
        """Destroy each recipient's key derived from the citizen's data keys. Call, and wait for
        the broker, before ``shred``: once the data keys are gone these can no longer be named."""
        data_keys = self.keys.all_for(citizen)
        for recipient in recipients:
            for key in data_keys:
                derived = notify_key_for(key, recipient)
                await self.keys.put(citizen, derived.key_id, None, topic=notify_keys_topic(recipient))

    def forget_on_shred(self, forget: Callable[[str], None]) -> None:
        """``forget`` is told each citizen shredded here, and drops what it holds of theirs in clear."""
        self._forgetters.append(forget)

    async def shred(self, citizen: str) -> int:
        """Destroy the citizen's data keys; returns how many."""
        shredded = await self.keys.shred(citizen)
        for forget in self._forgetters:
            forget(citizen)
        return shredded
