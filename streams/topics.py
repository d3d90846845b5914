"""Every topic the pipeline reads or writes, by name, and how to create them.

Topics are created up front, not by auto-creation: a Faust agent subscribed to a topic that
does not exist yet never sees it, and auto-created topics get the broker's default partition
count, which breaks the co-partitioning the tables rely on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from processors.routing import topic_for_subscriber
from schemas.topics import (
    DATA_AREA_CLOSED,
    DEAD_LETTER,
    DELETION_COMPLETED,
    FETCH_REFUSED,
    INGRESS_TOPICS,
    archive_receipts_topic,
    citizen_events_topic,
    citizen_keys_topic,
    table_assignment_topic,
)
from sinks.notify_keys import notify_keys_topic
from streams.kafka_auth import client_config

__all__ = ["TopicSpec", "cluster_replication", "ensure_topics", "notify_topic_specs", "pipeline_topics",
           "replication_for"]

DAY_MS = 24 * 3600 * 1000
# Subscriber topics keep 30 days: a subscriber that is down or suspended for longer than that
# must be re-fed from the source systems. Documented in docs/operations.md.
NOTIFY_RETENTION_MS = 30 * DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str]
    # The tables are co-partitioned with this topic: an existing one with another partition
    # count is refused, not silently used (the worker would own the wrong partitions).
    co_partitioned: bool = False


COMPACTED = {"cleanup.policy": "compact", "max.compaction.lag.ms": str(3600 * 1000),
             "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000),
             "delete.retention.ms": str(3600 * 1000)}


# The worker's tables (streams/bootstrap.py), each with a changelog topic: one row per citizen
# holds its state, its pending deadlines and its archive saga (streams/citizen_rows.py).
TABLES = ("citizens",)


def pipeline_topics(partitions: int, app_id: str = "dfdg", ingress_retention_days: int = 7) -> list[TopicSpec]:
    plain: dict[str, str] = {}
    kept = {"retention.ms": str(90 * DAY_MS)}
    # Publishers' events are consumed within seconds, and they hold CPR in clear that the
    # pipeline cannot rewrite or shred: they stay only as long as an outage needs
    # (DFDG_INGRESS_RETENTION_DAYS, default 7; docs/security.md says what to choose).
    ingress = {"retention.ms": str(ingress_retention_days * DAY_MS)}
    specs = [TopicSpec(t, partitions, ingress) for t in INGRESS_TOPICS]
    specs += [
        TopicSpec(citizen_events_topic(app_id), partitions, kept, co_partitioned=True),
        TopicSpec(citizen_keys_topic(app_id), partitions, COMPACTED),
        TopicSpec(table_assignment_topic(app_id), partitions, plain, co_partitioned=True),
        # The tables' changelogs, created here with the right partition count rather than left to
        # Faust: a client asking for one first would otherwise get a 1-partition auto-created topic.
        *(TopicSpec(f"{app_id}-{table}-changelog", partitions, COMPACTED, co_partitioned=True) for table in TABLES),
        # Dead letters are kept until a person has dealt with them (replayed or accepted).
        TopicSpec(DEAD_LETTER, 1, {"retention.ms": "-1"}),
        TopicSpec(DATA_AREA_CLOSED, partitions, kept),
        TopicSpec(FETCH_REFUSED, partitions, kept),
        # Keyed by citizen key with the citizen events' partition count: co-partitioned with the
        # citizens table, so a receipt reaches the worker (and the step) that holds the saga.
        TopicSpec(archive_receipts_topic(app_id), partitions, plain, co_partitioned=True),
        TopicSpec(DELETION_COMPLETED, partitions, kept),
        # Faust's leader-election topic: created here so it is replicated like the rest (Faust
        # would create it with its own replication factor, 1, and lose it with one broker).
        TopicSpec(f"{app_id}-__assignor-__leader", 1, plain),
    ]
    return specs


def notify_topic_specs(subscriber_id: str, partitions: int) -> list[TopicSpec]:
    """A subscriber's notification topic and its compacted key topic (docs/security.md)."""
    return [TopicSpec(topic_for_subscriber(subscriber_id), partitions, {"retention.ms": str(NOTIFY_RETENTION_MS)}),
            TopicSpec(notify_keys_topic(subscriber_id), 1, COMPACTED)]


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for a cluster of ``brokers``: with three or more,
    3 and 2, so a write acknowledged by all in-sync replicas survives losing any one broker and
    the topic stays writable while one is down; below three, every broker holds a copy and one
    in-sync replica is enough (a single local broker, the tests' default)."""
    if brokers >= 3:
        return 3, 2
    return max(brokers, 1), 1


async def cluster_replication(admin: Any) -> tuple[int, int]:
    """:func:`replication_for` the brokers the cluster reports now (a metadata request), never a
    constant: the same code creates topics on one local broker and on a national cluster."""
    cluster = await admin.describe_cluster()
    return replication_for(len(cluster["brokers"]))


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet, replicated as the cluster allows
    (:func:`cluster_replication`); return the names created. Existing topics are left as they are."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_config())
    await admin.start()
    try:
        specs = list(specs)
        existing = set(await admin.list_topics())
        await _check_partitions(admin, [s for s in specs if s.co_partitioned and s.name in existing])
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        replicas, min_isr = await cluster_replication(admin)
        # Only set where it differs from Kafka's default (1), so a topic on one broker reads as before.
        isr = {"min.insync.replicas": str(min_isr)} if min_isr > 1 else {}
        try:
            await admin.create_topics([
                NewTopic(s.name, s.partitions, replicas, topic_configs={**s.config, **isr}) for s in wanted
            ])
        except TopicAlreadyExistsError:
            pass  # another worker won the race; the topics exist, which is all we need
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def _check_partitions(admin: object, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    from streams.settings import ConfigError

    described = await admin.describe_topics([s.name for s in specs])  # type: ignore[attr-defined]
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    for spec in specs:
        if counts.get(spec.name, spec.partitions) != spec.partitions:
            raise ConfigError(f"topic {spec.name} has {counts[spec.name]} partitions but DFDG_PARTITIONS is "
                              f"{spec.partitions}; the tables are co-partitioned with it: set DFDG_PARTITIONS="
                              f"{counts[spec.name]} (or recreate the topic)")
