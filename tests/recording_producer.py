"""The ``streams.outbox.Producer`` contract in memory, for unit tests of what a step decides to
send (keys, partitions, values). What reaches a real broker is tested in tests/integration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class RecordingProducer:
    """Every record kept in order as (topic, key, value, headers, partition); partitions are
    the ones the sender asked for, or 0."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, list[Any], int]] = []
        self.sent: list[tuple[str, bytes | None, bytes | None, list[Any]]] = []  # the same, without partitions

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        return 0

    async def send(self, records: Mapping[tuple[str, int], Sequence[Any]]) -> dict[tuple[str, int], int]:
        for (topic, partition), batch in records.items():
            for key, value, headers in batch:
                self.records.append((topic, key, value, list(headers), partition))
                self.sent.append((topic, key, value, list(headers)))
        return {tp: len(batch) - 1 for tp, batch in records.items()}
