"""Every topic the pipeline reads or writes, by name, and how to create them.

Topics are created up front, not by auto-creation: a Faust agent subscribed to a topic that
does not exist yet never sees it, and auto-created topics get the broker's default partition
count, which breaks the co-partitioning the tables rely on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas.topics import (
    ARCHIVE_RECEIPTS,
    CITIZEN_EVENTS,
    DATA_AREA_CLOSED,
    DEAD_LETTER,
    DELETION_COMPLETED,
    FETCH_REFUSED,
    INGRESS_TOPICS,
)

__all__ = ["TopicSpec", "ensure_topics", "notify_topic_spec", "pipeline_topics"]

DAY_MS = 24 * 3600 * 1000
# Subscriber topics keep 30 days: a subscriber that is down or suspended for longer than that
# must be re-fed from the source systems. Documented in docs/operations.md.
NOTIFY_RETENTION_MS = 30 * DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str]


def pipeline_topics(partitions: int) -> list[TopicSpec]:
    plain: dict[str, str] = {}
    kept = {"retention.ms": str(90 * DAY_MS)}
    specs = [TopicSpec(t, partitions, kept) for t in INGRESS_TOPICS]
    specs += [
        TopicSpec(CITIZEN_EVENTS, partitions, kept),
        # Dead letters are kept until a person has dealt with them (replayed or accepted).
        TopicSpec(DEAD_LETTER, 1, {"retention.ms": "-1"}),
        TopicSpec(DATA_AREA_CLOSED, partitions, kept),
        TopicSpec(FETCH_REFUSED, partitions, kept),
        TopicSpec(ARCHIVE_RECEIPTS, 1, plain),
        TopicSpec(DELETION_COMPLETED, partitions, kept),
    ]
    return specs


def notify_topic_spec(name: str, partitions: int) -> TopicSpec:
    return TopicSpec(name, partitions, {"retention.ms": str(NOTIFY_RETENTION_MS)})


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        try:
            await admin.create_topics([
                NewTopic(s.name, s.partitions, 1, topic_configs=dict(s.config)) for s in wanted
            ])
        except TopicAlreadyExistsError:
            pass  # another worker won the race; the topics exist, which is all we need
        return [s.name for s in wanted]
    finally:
        await admin.close()
