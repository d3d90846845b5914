"""Topic names: part of the contract, so publishers, the worker, sinks and docs share them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from processors.events import EVENT_TYPES, Event, topic_for

__all__ = [
    "ARCHIVE_RECEIPTS",
    "CITIZEN_EVENTS",
    "DATA_AREA_CLOSED",
    "DEAD_LETTER",
    "DELETION_COMPLETED",
    "FETCH_REFUSED",
    "INGRESS_TOPICS",
    "TOPIC_EVENT_TYPES",
    "archive_receipts_topic",
    "citizen_events_topic",
    "citizen_keys_topic",
    "table_assignment_topic",
    "topic_carries",
]

# The one table of which event type each ingress topic carries. The broker's ACLs grant a
# publisher the topics of its event types; the door holds a record to its topic's type, so a
# publisher cannot act outside its grant by putting another type's record on its own topic.
TOPIC_EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType({topic_for(t): t for t in EVENT_TYPES})
INGRESS_TOPICS: tuple[str, ...] = tuple(TOPIC_EVENT_TYPES)


def topic_carries(topic: str, event: object) -> bool:
    """True when ``event`` is of the type ``topic`` carries (exactly: no subclasses, no other topics)."""
    return TOPIC_EVENT_TYPES.get(topic) is type(event)


def citizen_events_topic(app_id: str) -> str:
    """Every citizen's events, re-keyed by the pseudonymous citizen key and co-partitioned with
    the app's tables. It belongs to one app (one worker group), like the tables' changelogs."""
    return f"{app_id}.internal.citizen-events"


def table_assignment_topic(app_id: str) -> str:
    """An empty topic with the tables' partition count that the Faust app subscribes to. Faust
    assigns the citizens table's partitions together with it, and its consumer has live
    partitions to poll, as in any Faust app with a stream: a table-only Faust app that polls
    nothing after recovery can be taken for stuck after ``broker_max_poll_interval`` and leave
    its group (faust-streaming #138). Nothing is ever written to it."""
    return f"{app_id}.internal.table-assignment"


def citizen_keys_topic(app_id: str) -> str:
    """The app's per-citizen data keys, wrapped by the master key (compacted; see docs/security.md)."""
    return f"{app_id}.internal.citizen-keys"


# The default app's (DFDG_APP_ID=dfdg) internal topic, for docs and tools.
CITIZEN_EVENTS = citizen_events_topic("dfdg")
DEAD_LETTER = "dfdg.dead-letter"
DATA_AREA_CLOSED = "dfdg.data-area-closed"
FETCH_REFUSED = "dfdg.data-area-fetch-refused"


def archive_receipts_topic(app_id: str) -> str:
    """Receipts and rejections from the archive, keyed by citizen key and co-partitioned with the
    app's archive-sagas table; the archive side publishes here (``dfdg archive receive --publish``)."""
    return f"{app_id}.archive-receipts"


ARCHIVE_RECEIPTS = archive_receipts_topic("dfdg")
DELETION_COMPLETED = "dfdg.deletion-completed"
