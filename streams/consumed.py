"""A consumed record as the steps read it, whichever loop read it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processors.frozen import quick_init

__all__ = ["ConsumedMessage"]


@quick_init
@dataclass(frozen=True, slots=True)
class ConsumedMessage:
    """One consumed record, with the attributes the steps and their dead letters read (named as
    Faust names them: ``timestamp`` in seconds)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]

    @classmethod
    def of(cls, record: Any) -> ConsumedMessage:
        """From an aiokafka ``ConsumerRecord``."""
        return cls(record.topic, record.partition, record.offset, record.timestamp / 1000.0, record.key,
                   record.value, record.headers or ())
