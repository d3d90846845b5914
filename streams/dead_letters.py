"""Writes dead letters: the original message sealed for its owner, with the headers that say
where it came from and what to do, and never over the producer's size limit.

A letter whose sealed value would not fit keeps its coordinates, the original size and a
SHA-256 digest of the original value, and as much of the value as fits; ``dlq.truncated``
says so. It is never dropped: a message the broker accepted always gets its letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from schemas.topics import DEAD_LETTER
from sinks.dead_letter import DeadLetter, dead_letter_headers
from streams.logs import get_logger
from streams.metrics import Metrics
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
        letter = self._letter(msg, owner, code, message, exception_class, "dead letter")
        original: Sequence[tuple[str, bytes]] = list(msg.headers or ())
        headers = dead_letter_headers(original, letter)
        value = sealed_value if sealed_value is not None else await self._sealer.seal_event(owner, msg.value or b"")
        if not self._sender.fits(msg.key, value, headers):
            value, headers = await self._truncated(msg, owner, original, letter)
        await self._sender.send(DEAD_LETTER, msg.key, value, headers)

    async def send_without_value(self, msg: Any, owner: str, code: str, message: str) -> None:
        """A letter that keeps the coordinates, size and digest of the message but not its value."""
        if not code.startswith("E301"):
            message = f"{message} (the citizen has been deleted, so the value is not kept)"
        raw = msg.value or b""
        letter = self._letter(msg, owner, code, message, "Refused", "dead letter without its value")
        headers = dead_letter_headers((), letter) + _digest_headers(raw) + [("dlq.value-dropped", b"true")]
        # Keyed by the pseudonymous citizen key: the publisher's own key may be a CPR.
        await self._sender.send(DEAD_LETTER, owner.encode(), b"", headers)

    def _letter(self, msg: Any, owner: str, code: str, message: str, exception_class: str,
                what: str) -> DeadLetter:
        self._metrics.dead_letter(code.split(" ", 1)[0])
        log.warning(what, topic=msg.topic, partition=msg.partition, offset=msg.offset, code=code, reason=message)
        return DeadLetter(msg.topic, msg.partition, msg.offset, int(msg.timestamp * 1000), self._group, code,
                          message, exception_class, owner)

    async def _truncated(self, msg: Any, owner: str, original: Sequence[tuple[str, bytes]],
                         letter: DeadLetter) -> tuple[bytes, list[tuple[str, bytes]]]:
        raw = msg.value or b""
        extra = [("dlq.truncated", b"true"), *_digest_headers(raw)]
        headers = dead_letter_headers(original, letter) + extra
        if record_size(msg.key, b"", headers) + SEAL_OVERHEAD > self._sender.max_record_bytes:
            # The publisher's own headers are what is too large: keep ours, say so.
            headers = dead_letter_headers((), letter) + extra + [("dlq.headers-dropped", b"true")]
        room = self._sender.max_record_bytes - record_size(msg.key, b"", headers) - SEAL_OVERHEAD
        log.warning("dead letter truncated to fit", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                    original_bytes=len(raw), kept_bytes=max(room, 0))
        return await self._sealer.seal_event(owner, raw[:max(room, 0)]), headers


def _digest_headers(raw: bytes) -> list[tuple[str, bytes]]:
    return [("dlq.original-size", str(len(raw)).encode()),
            ("dlq.original-sha256", hashlib.sha256(raw).hexdigest().encode())]
