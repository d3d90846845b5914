"""Prometheus metrics of the worker, in a registry of their own (not the process-global one).

Labels carry only event types, error codes, saga states and group/topic/partition: never
a CPR or anything else about a person (DOMAIN.md: a CPR never appears in a metric label).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from streams.lag import LagReport, LagSnapshot, PartitionLag

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Processing one event is milliseconds; the tail (store flush, rebalance) is seconds.
_PROCESSING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Every metric the worker exposes, with the small setters the agents call."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        part = ("group", "topic", "partition")
        self.lag_messages = Gauge("dfdg_consumer_lag_messages", "Messages not yet consumed", part, registry=r)
        self.lag_seconds = Gauge("dfdg_consumer_lag_seconds", "Age of the oldest unconsumed message", part,
                                 registry=r)
        self.events_in = Counter("dfdg_events_in", "Inbound events processed", ("type",), registry=r)
        self.events_out = Counter("dfdg_events_out", "Outbound events produced", ("type",), registry=r)
        self.dead_letters = Counter("dfdg_dead_letters", "Events sent to the dead-letter topic", ("code",),
                                    registry=r)
        self.deadlines_pending = Gauge("dfdg_deadlines_pending", "Deadlines scheduled and not yet fired",
                                       registry=r)
        self.deadline_oldest_overdue = Gauge("dfdg_deadline_oldest_overdue_seconds",
                                             "How long the most overdue unfired deadline is past due (0: none)",
                                             registry=r)
        self.archive_sagas = Gauge("dfdg_archive_sagas", "Archive-then-delete sagas by state", ("state",),
                                   registry=r)
        self.archive_saga_oldest_wait = Gauge("dfdg_archive_saga_oldest_wait_seconds",
                                              "How long the longest-waiting archive saga has waited since it began",
                                              registry=r)
        self.webhooks_failing = Gauge("dfdg_webhook_deliveries_failing", "Webhook deliveries being retried",
                                      registry=r)
        self.webhooks_held = Gauge("dfdg_webhook_deliveries_held", "Webhook deliveries held for a closed recipient",
                                   registry=r)
        self._children: dict[tuple[Counter, str], Counter] = {}
        self.processing = Histogram("dfdg_processing_seconds", "Time to process one inbound event",
                                    buckets=_PROCESSING_BUCKETS, registry=r)

    def event_in(self, event_type: str) -> None:
        self._child(self.events_in, event_type).inc()

    def event_out(self, event_type: str) -> None:
        self._child(self.events_out, event_type).inc()

    def _child(self, counter: Counter, event_type: str) -> Counter:
        # labels() takes a lock and builds a key for every call; the steps count several times
        # per event, over a small fixed set of types, so each labelled child is looked up once.
        child = self._children.get((counter, event_type))
        if child is None:
            child = self._children[(counter, event_type)] = counter.labels(type=event_type)
        return child

    def dead_letter(self, code: str) -> None:
        self.dead_letters.labels(code=code).inc()

    def observe_processing(self, seconds: float) -> None:
        self.processing.observe(seconds)

    def set_deadlines(self, pending: int, oldest_overdue_s: float) -> None:
        self.deadlines_pending.set(pending)
        self.deadline_oldest_overdue.set(max(oldest_overdue_s, 0.0))

    def set_archive_sagas(self, by_state: Mapping[str, int], oldest_wait_s: float = 0.0) -> None:
        self.archive_sagas.clear()
        for state, count in by_state.items():
            self.archive_sagas.labels(state=state).set(count)
        self.archive_saga_oldest_wait.set(max(oldest_wait_s, 0.0))

    def set_webhooks(self, failing: int, held: int) -> None:
        self.webhooks_failing.set(failing)
        self.webhooks_held.set(held)

    def set_lag(self, snapshot: LagSnapshot | LagReport) -> None:
        """Replace the lag gauges with ``snapshot``: partitions no longer reported disappear."""
        self.lag_messages.clear()
        self.lag_seconds.clear()
        rows: list[tuple[str, PartitionLag]] = []
        if isinstance(snapshot, LagReport):
            rows = [(g.group, p.observed) for g in snapshot.groups for p in g.partitions]
        else:
            rows = [(g.group, p) for g in snapshot.groups for p in g.partitions]
        for group, p in rows:
            labels = {"group": group, "topic": p.topic, "partition": str(p.partition)}
            self.lag_messages.labels(**labels).set(p.lag)
            if p.lag_seconds is not None:
                self.lag_seconds.labels(**labels).set(p.lag_seconds)

    def dead_letters_by_code(self) -> dict[str, int]:
        """Dead letters counted so far per code, for the live page."""
        return {s.labels["code"]: int(s.value) for m in self.dead_letters.collect() for s in m.samples
                if s.name.endswith("_total")}

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
