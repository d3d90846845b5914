"""Where a message came from, carried through the internal hop so a dead letter always names
the publisher's message: its ingress topic, partition, offset and timestamp in clear (they are
not personal), and its key and headers sealed for the citizen (a publisher may key by CPR).

The door puts these on every record it passes to the citizen-events topic; a dead letter copies
them, so a letter written after the door names the same coordinates as one written at the door,
and ``dfdg dead-letters replay`` can put the original back where the publisher sent it.
The sealed part opens with the citizen's data key only: shredding the citizen shreds it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "ORIGIN_HEADERS",
    "ORIGIN_SEALED",
    "Origin",
    "origin_headers",
    "origin_of",
    "pack_envelope",
    "strip_origin",
    "unpack_envelope",
]

Headers = Sequence[tuple[str, bytes]]

ORIGIN_TOPIC = "dfdg.origin.topic"
ORIGIN_PARTITION = "dfdg.origin.partition"
ORIGIN_OFFSET = "dfdg.origin.offset"
ORIGIN_TIMESTAMP = "dfdg.origin.timestamp"
# The publisher's key and headers, sealed for the citizen (``Sealer.seal_origin``).
ORIGIN_SEALED = "dfdg.origin.sealed"
ORIGIN_HEADERS = (ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET, ORIGIN_TIMESTAMP, ORIGIN_SEALED)


@dataclass(frozen=True, slots=True)
class Origin:
    """The coordinates of a message as its publisher sent it, and its sealed key and headers."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    # ``None`` when not sealed yet (a message read from the ingress topic itself).
    sealed: bytes | None = None


def origin_headers(origin: Origin) -> list[tuple[str, bytes]]:
    headers = [(ORIGIN_TOPIC, origin.topic.encode()), (ORIGIN_PARTITION, str(origin.partition).encode()),
               (ORIGIN_OFFSET, str(origin.offset).encode()), (ORIGIN_TIMESTAMP, str(origin.timestamp_ms).encode())]
    if origin.sealed is not None:
        headers.append((ORIGIN_SEALED, origin.sealed))
    return headers


def origin_of(msg: Any) -> Origin:
    """The origin a record carries (written by the door), else the record's own coordinates."""
    found = {k: v for k, v in (msg.headers or ()) if k in ORIGIN_HEADERS}
    try:
        return Origin(found[ORIGIN_TOPIC].decode(), int(found[ORIGIN_PARTITION]), int(found[ORIGIN_OFFSET]),
                      int(found[ORIGIN_TIMESTAMP]), found.get(ORIGIN_SEALED))
    except (KeyError, ValueError, UnicodeDecodeError):
        # Not through the door (a deadline, an archive receipt) or a record written before the
        # door carried its origin: the record itself is the message to name.
        return Origin(msg.topic, msg.partition, msg.offset, round(msg.timestamp * 1000))


def strip_origin(headers: Headers) -> list[tuple[str, bytes]]:
    """Headers without any origin header: a publisher must not be able to forge its coordinates."""
    return [(k, v) for k, v in headers if k not in ORIGIN_HEADERS and not k.startswith("dlq.")]


def pack_envelope(key: bytes | None, headers: Headers) -> bytes:
    """The publisher's key and headers as bytes to seal (opened by ``unpack_envelope``)."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    # orjson: compact UTF-8 JSON that ``json.loads`` reads back; the stdlib's took ~1% of a
    # draining worker, once for every event the door passes on.
    return orjson.dumps({"key": None if key is None else b64(key),
                         "headers": [[name, b64(value)] for name, value in headers]})


def unpack_envelope(data: bytes) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    obj = json.loads(data)
    key = None if obj["key"] is None else base64.b64decode(obj["key"])
    return key, [(str(name), base64.b64decode(value)) for name, value in obj["headers"]]
