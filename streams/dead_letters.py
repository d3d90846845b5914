"""Writes dead letters: the original message sealed for its owner, keyed by that owner (never by
the publisher's key, which may be a CPR), with the publisher's key and headers sealed beside it
and clear headers that say where it came from and what to do, never over the producer's size limit.

The coordinates are always the publisher's message (``streams.origin``): a letter written by the
citizen step names the ingress topic, partition and offset the door read, not the internal hop.

A letter whose sealed value would not fit keeps its coordinates, the original size and a
SHA-256 digest of the original value, and as much of the value as fits; ``dlq.truncated``
says so. It is never dropped: a message the broker accepted always gets its letter.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from schemas.topics import DEAD_LETTER
from sinks.dead_letter import DeadLetter, dead_letter_headers, without_values
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.origin import Origin, origin_of, strip_origin
from streams.outbox import KafkaSender, record_size
from streams.sealing import Sealer, dead_letter_owner

__all__ = ["SEAL_OVERHEAD", "DeadLetters"]

log = get_logger("dfdg.worker")

# Marker, key id, nonce and tag that sealing adds to a value (sinks.crypto).
SEAL_OVERHEAD = 2 + 16 + 12 + 16


class DeadLetters:
    def __init__(self, sender: KafkaSender, sealer: Sealer, metrics: Metrics, group: str) -> None:
        self._sender = sender
        self._sealer = sealer
        self._metrics = metrics
        self._group = group

    def owner_for(self, msg: Any, citizen_key: str | None) -> str:
        return citizen_key or dead_letter_owner(msg.topic, msg.partition, msg.offset)

    async def send(self, msg: Any, owner: str, code: str, message: str, exception_class: str,
                   sealed_value: bytes | None = None) -> None:
        """``msg`` is the consumed message; ``sealed_value`` when its value is already sealed for ``owner``."""
        if sealed_value is None and self._sealer.keys.is_erased(owner):
            # R7.3: a deleted citizen gets no new key, so their message is not kept at all.
            await self.send_without_value(msg, owner, code, message)
            return
        origin = await self._sealed_origin(msg, owner, strip_origin(msg.headers or ()))
        letter = self._letter(origin, owner, code, message, exception_class, "dead letter")
        headers = dead_letter_headers(letter, origin.sealed)
        value = sealed_value if sealed_value is not None else await self._sealer.seal_event(owner, msg.value or b"")
        key = owner.encode()
        if not self._sender.fits(key, value, headers):
            value, headers = await self._truncated(msg, owner, letter, origin)
        await self._sender.send(DEAD_LETTER, key, value, headers)

    async def send_without_value(self, msg: Any, owner: str, code: str, message: str) -> None:
        """A letter that keeps the coordinates, size and digest of the message but not its value
        (nor its key or headers: the citizen has been deleted)."""
        if not code.startswith("E301"):
            message = f"{message} (the citizen has been deleted, so the value is not kept)"
        raw = msg.value or b""
        origin = replace(origin_of(msg), sealed=None)
        letter = self._letter(origin, owner, code, message, "Refused", "dead letter without its value")
        headers = dead_letter_headers(letter) + _digest_headers(raw) + [("dlq.value-dropped", b"true")]
        await self._sender.send(DEAD_LETTER, owner.encode(), b"", headers)

    async def _sealed_origin(self, msg: Any, owner: str, headers: list[tuple[str, bytes]]) -> Origin:
        origin = origin_of(msg)
        if origin.sealed is not None:
            return origin  # sealed by the door for this citizen; copied as it is
        return replace(origin, sealed=await self._sealer.seal_origin(owner, msg.key, headers))

    def _letter(self, origin: Origin, owner: str, code: str, message: str, exception_class: str,
                what: str) -> DeadLetter:
        self._metrics.dead_letter(code.split(" ", 1)[0])
        message = without_values(message)
        log.warning(what, topic=origin.topic, partition=origin.partition, offset=origin.offset, code=code,
                    reason=message)
        return DeadLetter(origin.topic, origin.partition, origin.offset, origin.timestamp_ms, self._group, code,
                          message, exception_class, owner)

    async def _truncated(self, msg: Any, owner: str, letter: DeadLetter,
                         origin: Origin) -> tuple[bytes, list[tuple[str, bytes]]]:
        raw = msg.value or b""
        key = owner.encode()
        extra = [("dlq.truncated", b"true"), *_digest_headers(raw)]
        headers = dead_letter_headers(letter, origin.sealed) + extra
        if record_size(key, b"", headers) + SEAL_OVERHEAD > self._sender.max_record_bytes:
            # The publisher's own headers are what is too large: keep its key (sealed), say so.
            only_key = await self._sealer.seal_origin(owner, _original_key(msg, origin), ())
            headers = dead_letter_headers(letter, only_key) + extra + [("dlq.headers-dropped", b"true")]
        room = self._sender.max_record_bytes - record_size(key, b"", headers) - SEAL_OVERHEAD
        log.warning("dead letter truncated to fit", topic=letter.topic, partition=letter.partition,
                    offset=letter.offset, original_bytes=len(raw), kept_bytes=max(room, 0))
        return await self._sealer.seal_event(owner, raw[:max(room, 0)]), headers


def _original_key(msg: Any, origin: Origin) -> bytes | None:
    # After the door the publisher's key exists only inside the (too large) sealed origin; the
    # internal record's key is the citizen key, which the letter's own key already is.
    return msg.key if origin.topic == msg.topic else None


def _digest_headers(raw: bytes) -> list[tuple[str, bytes]]:
    return [("dlq.original-size", str(len(raw)).encode()),
            ("dlq.original-sha256", hashlib.sha256(raw).hexdigest().encode())]
