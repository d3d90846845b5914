"""Consumer lag of the pipeline's groups: collect from Kafka, keep a window, evaluate.

``collect_lag`` takes one snapshot (committed offset, log-end offset, lag in messages and
in seconds per group/topic/partition); ``LagTracker`` keeps the last N observations per
partition and applies Burrow's rules (``streams.lag_eval``); ``LagHistory`` keeps an hour of
per-topic lag for the live page. The CLI (``dfdg lag``) and the worker's /metrics share them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka_auth import client_config
from streams.lag_eval import Observation, Status, evaluate, worst

__all__ = [
    "GroupLag",
    "GroupReport",
    "LagHistory",
    "LagReport",
    "LagSnapshot",
    "LagTracker",
    "PartitionLag",
    "PartitionReport",
    "collect_lag",
]


@dataclass(frozen=True)
class PartitionLag:
    """One partition as a group sees it; ``lag_seconds`` is None when it could not be read."""

    topic: str
    partition: int
    committed_offset: int
    end_offset: int
    lag_seconds: float | None
    last_commit_at: float | None = None

    @property
    def lag(self) -> int:
        return max(self.end_offset - self.committed_offset, 0)


@dataclass(frozen=True)
class GroupLag:
    group: str
    state: str
    members: int
    partitions: tuple[PartitionLag, ...]
    error: str | None = None


@dataclass(frozen=True)
class LagSnapshot:
    """Every selected group at ``taken_at`` (epoch seconds)."""

    taken_at: float
    groups: tuple[GroupLag, ...]


@dataclass(frozen=True)
class PartitionReport:
    observed: PartitionLag
    status: Status

    def to_dict(self) -> dict[str, Any]:
        p = self.observed
        return {"topic": p.topic, "partition": p.partition, "committed_offset": p.committed_offset,
                "end_offset": p.end_offset, "lag": p.lag,
                "lag_seconds": None if p.lag_seconds is None else round(p.lag_seconds, 3),
                "status": self.status.value}


@dataclass(frozen=True)
class GroupReport:
    group: str
    state: str
    members: int
    status: Status
    partitions: tuple[PartitionReport, ...]
    error: str | None = None

    @property
    def total_lag(self) -> int:
        return sum(p.observed.lag for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "state": self.state, "members": self.members, "status": self.status.value,
                "total_lag": self.total_lag, "error": self.error,
                "partitions": [p.to_dict() for p in self.partitions]}


@dataclass(frozen=True)
class LagReport:
    """A snapshot with a Burrow status per partition and per group."""

    taken_at: float
    groups: tuple[GroupReport, ...]

    @property
    def status(self) -> Status:
        return worst(g.status for g in self.groups)

    def topic_lag(self) -> dict[str, int]:
        """Lag per topic: summed over partitions, the worst group when several read a topic."""
        totals: dict[str, int] = {}
        for g in self.groups:
            per_topic: dict[str, int] = {}
            for p in g.partitions:
                per_topic[p.observed.topic] = per_topic.get(p.observed.topic, 0) + p.observed.lag
            for topic, lag in per_topic.items():
                totals[topic] = max(totals.get(topic, 0), lag)
        return totals

    def to_dict(self) -> dict[str, Any]:
        return {"taken_at": self.taken_at, "status": self.status.value, "groups": [g.to_dict() for g in self.groups]}


class LagTracker:
    """Keeps the last ``window`` observations per (group, topic, partition) and evaluates them."""

    def __init__(self, window: int = 10) -> None:
        if window < 1:
            raise ValueError("window must be at least 1 observation")
        self.window = window
        self._windows: dict[tuple[str, str, int], deque[Observation]] = {}

    def observe(self, snapshot: LagSnapshot) -> LagReport:
        """Add ``snapshot`` to the windows and return the evaluated report."""
        seen: set[tuple[str, str, int]] = set()
        groups = []
        for g in snapshot.groups:
            parts = []
            for p in g.partitions:
                key = (g.group, p.topic, p.partition)
                seen.add(key)
                win = self._windows.setdefault(key, deque(maxlen=self.window))
                win.append(Observation(snapshot.taken_at, p.committed_offset, p.end_offset, p.last_commit_at))
                parts.append(PartitionReport(p, evaluate(list(win))))
            status = Status.ERR if g.error else worst(p.status for p in parts)
            groups.append(GroupReport(g.group, g.state, g.members, status, tuple(parts), g.error))
        # A partition the group no longer has offsets for starts afresh if it comes back.
        for key in set(self._windows) - seen:
            del self._windows[key]
        return LagReport(snapshot.taken_at, tuple(groups))


@dataclass
class LagHistory:
    """Per-topic lag over the last ``max_age_s`` seconds, and the latest report, for the live page."""

    max_age_s: float = 3600.0
    points: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)
    latest: LagReport | None = None

    def record(self, report: LagReport) -> None:
        self.latest = report
        self.points.append((report.taken_at, report.topic_lag()))
        while self.points and self.points[0][0] < report.taken_at - self.max_age_s:
            self.points.popleft()

    def series(self) -> dict[str, list[list[float]]]:
        """``{topic: [[epoch_s, lag], ...]}``, oldest first."""
        out: dict[str, list[list[float]]] = {}
        for ts, per_topic in self.points:
            for topic, lag in per_topic.items():
                out.setdefault(topic, []).append([ts, lag])
        return out


def _describe(responses: Iterable[Any]) -> dict[str, tuple[str, int]]:
    described: dict[str, tuple[str, int]] = {}
    for resp in responses:
        for entry in resp.groups:
            # (error_code, group, state, protocol_type, protocol, members, ...)
            described[entry[1]] = (entry[2] or "Unknown", len(entry[5]))
    return described


# Only the first record at a committed offset is read. At aiokafka's default (1 MiB a
# partition) each refresh fetched and decoded ~1,000 records a partition of a backlog, 3% of a
# draining worker's CPU. A record batch larger than this still comes whole when its partition
# is the first in the broker's answer (KIP-74); aiokafka shuffles the partitions it asks for, and
# the loop asks again for those that came empty.
AGE_FETCH_BYTES = 64 * 1024


async def _lag_seconds(consumer: AIOKafkaConsumer, wanted: dict[TopicPartition, int],
                       now: float, timeout_s: float) -> dict[tuple[TopicPartition, int], float]:
    """Age of the first unconsumed record at each (partition, committed offset)."""
    result: dict[tuple[TopicPartition, int], float] = {}
    if not wanted:
        return result
    consumer.assign(list(wanted))
    for tp, offset in wanted.items():
        consumer.seek(tp, offset)
    pending = dict(wanted)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1)
        for tp, records in batch.items():
            if tp in pending and records:
                # The record at the committed offset may be compacted away: the next one is as old as it gets.
                result[(tp, pending.pop(tp))] = max(now - records[0].timestamp / 1000.0, 0.0)
    return result


async def collect_lag(bootstrap: str, groups: list[str] | None, prefix: str, *,
                      clock: Callable[[], float] = time.time, timeout_s: float = 10.0) -> LagSnapshot:
    """Lag of every group whose id starts with ``prefix``, plus ``groups``, at this moment.

    A group with live members is taken as committing now (consumers commit on an interval);
    an empty group's last commit is left for the tracker to infer from offset changes.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **client_config())
    await admin.start()
    try:
        listed = {entry[0] for entry in await admin.list_consumer_groups()}
        selected = sorted({g for g in listed if prefix and g.startswith(prefix)} | set(groups or []))
        # One group per request: aiokafka 0.14 decodes a v3 DescribeGroups answer with the v2
        # layout, which misreads every group after the first (a "buffer underrun").
        described: dict[str, tuple[str, int]] = {}
        for g in selected:
            described.update(_describe(await admin.describe_consumer_groups([g])))
        offsets: dict[str, dict[TopicPartition, int]] = {}
        errors: dict[str, str] = {}
        for g in selected:
            try:
                raw = await admin.list_consumer_group_offsets(g)
                offsets[g] = {tp: meta.offset for tp, meta in raw.items() if meta.offset >= 0}
            except Exception as exc:  # noqa: BLE001 - reported as the group's ERR status, not a crash
                offsets[g], errors[g] = {}, f"{type(exc).__name__}: {exc}"
    finally:
        await admin.close()
    all_tps = sorted({tp for per_group in offsets.values() for tp in per_group})
    ends: dict[TopicPartition, int] = {}
    ages: dict[tuple[TopicPartition, int], float] = {}
    now = clock()
    # No consumer when no group has offsets: aiokafka 0.14 raises CancelledError from stop()
    # right after start() (its committed-offsets task is cancelled before it ever ran).
    if all_tps:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=int(timeout_s * 1000),
                                    max_partition_fetch_bytes=AGE_FETCH_BYTES, **client_config())
        await consumer.start()
        try:
            ends = await consumer.end_offsets(all_tps)
            now = clock()
            todo = {(tp, off) for per_group in offsets.values() for tp, off in per_group.items() if ends[tp] > off}
            while todo:
                # One committed offset per partition per round: groups at different offsets need their own seek.
                round_ = dict(sorted(todo))
                ages.update(await _lag_seconds(consumer, round_, now, timeout_s))
                todo -= set(round_.items())
        finally:
            await consumer.stop()
    result = []
    for g in selected:
        state, members = described.get(g, ("Dead", 0))
        parts = tuple(
            PartitionLag(tp.topic, tp.partition, off, ends[tp],
                         0.0 if ends[tp] <= off else ages.get((tp, off)),
                         now if members > 0 else None)
            for tp, off in sorted(offsets[g].items())
        )
        result.append(GroupLag(g, state, members, parts, errors.get(g)))
    return LagSnapshot(now, tuple(result))
