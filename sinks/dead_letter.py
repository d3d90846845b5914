"""Dead letters: the original key, value and headers untouched, plus headers that say where
the message came from and what to do about it. Never a stack trace, never a value that
could carry personal data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DLQ_HEADERS", "DeadLetter", "dead_letter_headers"]

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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    group: str
    code: str
    message: str
    exception_class: str
    # Whose key sealed the value: a pseudonymous citizen key, or the letter's own key id.
    sealed_for: str = ""


def dead_letter_headers(original: Sequence[tuple[str, bytes]], letter: DeadLetter) -> list[tuple[str, bytes]]:
    # The publisher's own headers come first and unchanged, so a replay restores them as they were.
    ours = [
        ("dlq.topic", letter.topic),
        ("dlq.partition", str(letter.partition)),
        ("dlq.offset", str(letter.offset)),
        ("dlq.timestamp", str(letter.timestamp_ms)),
        ("dlq.group", letter.group),
        ("dlq.error.code", letter.code),
        ("dlq.error.message", letter.message),
        ("dlq.error.class", letter.exception_class),
        ("dlq.sealed-for", letter.sealed_for),
    ]
    kept = [(k, v) for k, v in original if not k.startswith("dlq.")]
    return kept + [(k, v.encode()) for k, v in ours]


def original_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The publisher's headers, as they were before the dead-letter headers were added."""
    return [(k, v) for k, v in headers if not k.startswith("dlq.")]
