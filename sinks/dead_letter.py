"""Dead letters: keyed by the citizen key (or a digest when no citizen can be named), the
original value sealed, the publisher's key and headers sealed beside it (``dlq.original``), and
clear headers that say where the message came from and what to do about it. Never a stack
trace, never a value that could carry personal data."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DLQ_HEADERS", "DLQ_ORIGINAL", "DeadLetter", "dead_letter_headers", "without_values"]

DLQ_HEADERS = (
    "dlq.topic",
    "dlq.partition",
    "dlq.offset",
    "dlq.timestamp",
    "dlq.group",
    "dlq.error.code",
    "dlq.error.message",
    "dlq.error.class",
    "dlq.sealed-for",
)
# The publisher's key and headers, sealed for ``dlq.sealed-for`` (``streams.origin``).
DLQ_ORIGINAL = "dlq.original"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    # Always the message as its publisher sent it: the ingress topic, partition and offset,
    # also for a letter written after the door (``streams.origin``).
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    group: str
    code: str
    message: str
    exception_class: str
    # Whose key sealed the value: a pseudonymous citizen key, or the letter's own digest.
    sealed_for: str = ""


def dead_letter_headers(letter: DeadLetter, sealed_original: bytes | None = None) -> list[tuple[str, bytes]]:
    ours = [
        ("dlq.topic", letter.topic),
        ("dlq.partition", str(letter.partition)),
        ("dlq.offset", str(letter.offset)),
        ("dlq.timestamp", str(letter.timestamp_ms)),
        ("dlq.group", letter.group),
        ("dlq.error.code", letter.code),
        ("dlq.error.message", without_values(letter.message)),
        ("dlq.error.class", letter.exception_class),
        ("dlq.sealed-for", letter.sealed_for),
    ]
    headers = [(k, v.encode()) for k, v in ours]
    if sealed_original is not None:
        headers.append((DLQ_ORIGINAL, sealed_original))
    return headers


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_CPR_SHAPED = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


def without_values(message: str) -> str:
    """A rejection message with anything that looks like a value the publisher sent masked: quoted
    text (``case 'c-1'``) and CPR-shaped digits (a CPR in the wrong field). Messages should name
    fields only (``tests/streams/test_rejection_reasons_carry_no_values.py`` holds the core to
    that); this is the second line, for a message that quotes what it was given all the same."""
    return _CPR_SHAPED.sub("<digits>", _QUOTED.sub("<value>", message))
