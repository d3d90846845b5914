"""Topic names: part of the contract, so publishers, the worker, sinks and docs share them."""

from __future__ import annotations

from processors.events import EVENT_TYPES, topic_for

__all__ = [
    "ARCHIVE_RECEIPTS",
    "CITIZEN_EVENTS",
    "DATA_AREA_CLOSED",
    "DEAD_LETTER",
    "DELETION_COMPLETED",
    "FETCH_REFUSED",
    "INGRESS_TOPICS",
]

INGRESS_TOPICS: tuple[str, ...] = tuple(topic_for(t) for t in EVENT_TYPES)
# Every citizen's events, re-keyed by the pseudonymous citizen key: co-partitioned with the tables.
CITIZEN_EVENTS = "dfdg.internal.citizen-events"
DEAD_LETTER = "dfdg.dead-letter"
DATA_AREA_CLOSED = "dfdg.data-area-closed"
FETCH_REFUSED = "dfdg.data-area-fetch-refused"
ARCHIVE_RECEIPTS = "dfdg.archive-receipts"
DELETION_COMPLETED = "dfdg.deletion-completed"
