"""Builds the worker in one place: the Faust app, its topics and tables, the codec, the sinks,
the deadline index, and the agents that tie them to the processors.

Every agent runs with concurrency 1: faust-streaming can commit past unprocessed messages
with concurrency > 1 (its issue #606). Throughput comes from partitions and workers.
Processing is at-least-once (Faust's exactly-once mode has open bugs); outputs carry ids
derived from their cause and state remembers what has acted, so a replay sends nothing new.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import faust

from dfdg.lag import LagHistory, LagTracker, collect_lag
from processors.events import DeadlineDue, Event
from processors.model import (
    CitizenState,
    DataAreaClosedOut,
    DeletionRequested,
    FetchRefused,
    Rejected,
    deterministic_id,
)
from processors.pipeline import Outcome, process
from processors.routing import subscriber_for_topic
from processors.state_codec import state_from_dict, state_to_dict
from schemas.codec import Codec
from schemas.topics import citizen_events_topic, citizen_keys_topic
from sinks.dead_letter import DeadLetter
from sinks.kafka_out import KafkaOutputs
from streams.clock import Clock
from streams.crypto import MasterKey
from streams.deadlines import DeadlineIndex, encode_row, entries_for
from streams.ingest import Admitted, admit
from streams.kafka_auth import faust_credentials
from streams.keystore import KeyStore, UnknownKey
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.saga import SagaShell, register_agents  # archive saga (R7-R9)
from streams.sealing import Sealer, dead_letter_owner
from streams.settings import Settings
from streams.topics import COMPACTED, INGRESS_TOPICS, ensure_topics, notify_topic_specs
from streams.web import PipelineStatus, Readiness, build_web_app

__all__ = ["Pipeline", "build_pipeline"]

log = get_logger("dfdg.worker")

# Deleted citizens' rows become tombstones; compaction must remove them from Kafka within a
# bounded time (R7), not whenever the cleaner gets round to it.
CHANGELOG_CONFIG = COMPACTED


class Pipeline:
    """The worker's parts; the agents below are a few lines that call into it."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.codec = Codec.default()
        self.metrics = Metrics()
        self.readiness = Readiness()
        self.lag_history = LagHistory()
        self.lag_tracker = LagTracker()
        self.index = DeadlineIndex()
        self.ready = False
        self.app = faust.App(
            settings.app_id,
            broker=";".join(f"kafka://{b.strip()}" for b in settings.bootstrap.split(",")),
            store=settings.store,
            datadir=str(settings.data_dir),
            topic_partitions=settings.partitions,
            topic_allow_declare=True,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=False,
            producer_acks=-1,
            # A few ms of linger batches the many small outputs of one event into one request:
            # without it the worker spent a quarter of its time writing tiny produce requests.
            producer_linger=0.005,
            broker_commit_every=500,
            broker_commit_interval=1.0,
            table_standby_replicas=0,
            broker_credentials=faust_credentials(),
        )
        self.ingress = self.app.topic(*INGRESS_TOPICS, key_type=bytes, value_type=bytes)
        self.citizen_events_name = citizen_events_topic(settings.app_id)
        self.citizen_events = self.app.topic(self.citizen_events_name, key_type=bytes, value_type=bytes,
                                             partitions=settings.partitions)
        self.states = self.app.Table("citizen-state", partitions=settings.partitions, key_type=bytes,
                                     value_type=bytes, extra_topic_configs=CHANGELOG_CONFIG)
        self.deadlines = self.app.Table("deadlines", partitions=settings.partitions, key_type=bytes,
                                        value_type=bytes, extra_topic_configs=CHANGELOG_CONFIG)
        self.outputs = KafkaOutputs(self.codec, self._send, self._ensure_topic)
        # Crypto-shredding (docs/security.md): everything personal is sealed with the citizen's key.
        self.sealer = Sealer(KeyStore(settings.bootstrap, citizen_keys_topic(settings.app_id),
                                      MasterKey.from_env(settings.dev_mode), send=self._send_row),
                             settings.dev_mode)
        self.saga = SagaShell(self, CHANGELOG_CONFIG)  # archive saga (R7-R9)

    # ---- I/O helpers ----

    async def _send(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> object:
        return await self.app.producer.send(topic, key, value, None, None, list(headers))

    async def _send_row(self, topic: str, key: bytes, value: bytes | None) -> object:
        # Faust's producer handles a None value as a tombstone.
        return await self.app.producer.send(topic, key, value, None, None, None)

    async def _ensure_topic(self, name: str) -> None:
        await ensure_topics(self.settings.bootstrap, notify_topic_specs(subscriber_for_topic(name),
                                                                        self.settings.partitions))

    async def load_state(self, key: bytes) -> CitizenState:
        raw = self.states.get(key)
        if raw is None:
            return CitizenState(citizen_key=key.decode())
        return state_from_dict(json.loads(await self.sealer.open_state(key.decode(), raw)))

    async def save_state(self, key: bytes, state: CitizenState) -> None:
        """Write the citizen's row, sealed (call from the citizen's partition only)."""
        data = json.dumps(state_to_dict(state), separators=(",", ":")).encode()
        self.states[key] = await self.sealer.seal_state(key.decode(), data)

    # ---- the door ----

    async def on_ingress(self, event: faust.types.EventT) -> None:
        msg = event.message
        now = self.clock.now()
        result = admit(msg.value, self.codec, self.settings.pseudonym_key, now)
        await self.sealer.keys.ready()
        if isinstance(result, Admitted):
            self.metrics.event_in(type(result.event).__name__)
            sealed = await self.sealer.seal_event(result.citizen_key, msg.value)
            await self.citizen_events.send(key=result.citizen_key.encode(), value=sealed,
                                           headers=list(msg.headers or ()))
            return
        owner = result.citizen_key or dead_letter_owner(msg.topic, msg.partition, msg.offset)
        sealed = await self.sealer.seal_event(owner, msg.value or b"")
        await self._dead_letter(msg, sealed, owner, result.code, result.message, result.exception_class)

    async def _dead_letter(self, msg: Any, sealed_value: bytes, owner: str, code: str, message: str,
                           exception_class: str) -> None:
        """The original message, its value sealed for ``owner`` (a citizen key, or the letter's own)."""
        self.metrics.dead_letter(code.split(" ", 1)[0])
        log.warning("dead letter", topic=msg.topic, partition=msg.partition, offset=msg.offset, code=code,
                    reason=message)
        letter = DeadLetter(msg.topic, msg.partition, msg.offset, int(msg.timestamp * 1000),
                            self.settings.app_id, code, message, exception_class, owner)
        await self.outputs.dead_letter(msg.key, sealed_value, list(msg.headers or ()), letter)

    # ---- the citizen's partition ----

    async def on_citizen_event(self, event: faust.types.EventT) -> None:
        msg = event.message
        started = time.perf_counter()
        key: bytes = msg.key
        citizen = key.decode()
        now = self.clock.now()
        await self.sealer.keys.ready()
        try:
            raw = await self.sealer.open_event(citizen, msg.value)
        except UnknownKey:
            # The citizen has been deleted and the key shredded: nothing of it may be processed.
            self.metrics.event_in("SkippedShredded")
            log.info("event for a deleted citizen skipped", partition=msg.partition, offset=msg.offset,
                     citizen=citizen[:12])
            return
        try:
            decoded = self.codec.decode(raw)
            assert isinstance(decoded, Event)
            before = await self.load_state(key)
            outcome = process(before, decoded, now)
        except Exception as exc:  # noqa: BLE001 - a bug on one event must not stop the partition
            log.error("processing failed", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                      error=type(exc).__name__)
            await self._dead_letter(msg, msg.value, citizen, "E901 processing-failed", "the worker could not "
                                    f"process this event ({type(exc).__name__}); it is kept here for replay after "
                                    "a fix", type(exc).__name__)
            return
        await self._persist(key, msg.partition, before, outcome)
        await self._emit(msg, decoded, outcome, now)
        self.metrics.observe_processing(time.perf_counter() - started)
        log.debug("processed", event_type=type(decoded).__name__, event_id=decoded.event_id,
                  citizen=key.decode()[:12], ms=round((time.perf_counter() - started) * 1000, 2))

    async def _persist(self, key: bytes, partition: int, before: CitizenState, outcome: Outcome) -> None:
        state = outcome.state
        if state != before:
            await self.save_state(key, state)
        decision = outcome.decision
        if decision.set_deadlines or decision.cancel_deadlines or before.pending != state.pending:
            if state.pending:
                self.deadlines[key] = encode_row(partition, state.pending.values())
            elif key in self.deadlines:
                del self.deadlines[key]
            self.index.replace_citizen(key.decode(), entries_for(key.decode(), partition, state.pending.values()))

    async def _emit(self, msg: Any, cause: Event, outcome: Outcome, now: datetime) -> None:
        state = outcome.state
        for delivery in outcome.deliveries:
            personal = None
            if state.personal.cpr is not None:
                personal = await self.sealer.seal_personal(state.citizen_key, delivery.recipient,
                                                           delivery.notification_id, {"cpr": state.personal.cpr})
            await self.outputs.notify(delivery, state, now, personal)
            self.metrics.event_out(f"notification:{delivery.notice.kind}")
        for output in outcome.outputs:
            if isinstance(output, DataAreaClosedOut):
                await self.outputs.data_area_closed(output, state.citizen_key, now)
                self.metrics.event_out("DataAreaClosed")
            elif isinstance(output, FetchRefused):
                await self.outputs.fetch_refused(output, state.citizen_key, now)
                self.metrics.event_out("FetchRefused")
            elif isinstance(output, Rejected):
                await self._dead_letter(msg, msg.value, state.citizen_key, output.code, output.reason, "Rejected")
            elif isinstance(output, DeletionRequested):
                self.metrics.event_out(f"DeletionRequested:{output.rule}")
        await self.saga.on_outcome(cause, outcome, now)  # archive saga (R7-R9)

    # ---- operators ----

    async def start_web(self) -> None:
        await _start_web(self)

    def status(self) -> PipelineStatus:
        now = self.clock.now()
        overdue_s = self.index.oldest_overdue_seconds(now)
        report = self.lag_history.latest
        status = "STARTING" if not self.ready else (report.status.value if report else "OK")
        return PipelineStatus(status=status, dead_letters=self.metrics.dead_letters_by_code(),
                              deadlines_pending=len(self.index), deadlines_overdue=int(overdue_s > 0),
                              oldest_overdue_s=overdue_s, detail=f"clock {now.isoformat(timespec='seconds')}")

    async def refresh_metrics(self) -> None:
        now = self.clock.now()
        self.metrics.set_deadlines(len(self.index), self.index.oldest_overdue_seconds(now))
        try:
            snapshot = await collect_lag(self.settings.bootstrap, None, self.settings.app_id)
        except Exception as exc:  # noqa: BLE001 - lag is best effort; the pipeline goes on
            log.warning("lag collection failed", error=type(exc).__name__)
            return
        report = self.lag_tracker.observe(snapshot)
        self.metrics.set_lag(report)
        self.lag_history.record(report)

    # ---- deadlines ----

    def owned_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.citizen_events_name}

    def rebuild_index(self) -> None:
        self.index.rebuild((k.decode(), v) for k, v in self.deadlines.items())
        self.ready = True
        self.readiness.mark_assigned()
        self.readiness.mark_recovered()
        log.info("deadline index rebuilt", pending=len(self.index), partitions=sorted(self.owned_partitions()))

    async def fire_due_deadlines(self) -> int:
        if not self.ready:
            return 0
        now = self.clock.now()
        due = self.index.pop_due(now, self.owned_partitions())
        for entry in due:
            deadline = DeadlineDue(
                event_id=deterministic_id("deadline-due", entry.citizen_key, entry.deadline_id),
                occurred_at=now, producer=f"{self.settings.app_id}-deadlines", deadline_id=entry.deadline_id,
                rule=entry.rule, due_date=datetime.fromisoformat(entry.due_date).date(), case_id=entry.case_id)
            await self.citizen_events.send(key=entry.citizen_key.encode(), value=self.codec.encode(deadline),
                                           partition=entry.partition, headers=self.codec.headers_for(deadline))
        if due:
            log.info("deadlines due", count=len(due))
        return len(due)


async def _start_web(pipeline: Pipeline) -> None:
    from aiohttp import web

    runner = web.AppRunner(build_web_app(pipeline.metrics, pipeline.readiness, pipeline.lag_history,
                                         pipeline.status))
    await runner.setup()
    site = web.TCPSite(runner, pipeline.settings.web_host, pipeline.settings.web_port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else pipeline.settings.web_port
    log.info("operator pages listening", url=f"http://{pipeline.settings.web_host}:{port}/live", port=port)


def build_pipeline(settings: Settings, clock: Clock, tick_seconds: float = 1.0) -> Pipeline:
    pipeline = Pipeline(settings, clock)
    app = pipeline.app

    @app.agent(pipeline.ingress, concurrency=1, name="ingest")
    async def ingest(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await pipeline.on_ingress(event)

    @app.agent(pipeline.citizen_events, concurrency=1, name="citizen")
    async def citizen(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await pipeline.on_citizen_event(event)

    register_agents(app, pipeline.saga)  # archive saga (R7-R9): the receipts agent

    @app.timer(interval=tick_seconds, name="deadlines")
    async def deadlines() -> None:
        await pipeline.fire_due_deadlines()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        pipeline.ready = False
        pipeline.readiness.mark_revoked()
        pipeline.index.clear()

    @app.task
    async def load_data_keys() -> None:
        await pipeline.sealer.start()

    @app.task
    async def serve_operator_pages() -> None:
        await pipeline.start_web()

    @app.timer(interval=5.0, name="operator-metrics")
    async def refresh_operator_metrics() -> None:
        await pipeline.refresh_metrics()

    @app.on_rebalance_complete.connect
    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
        pipeline.rebuild_index()

    return pipeline


async def prepare_topics(settings: Settings) -> list[str]:
    """The pipeline's topics, and every registered subscriber's, so a subscriber can connect
    (and be granted access) before its first notification."""
    from sinks.registry_store import load
    from streams.topics import pipeline_topics

    specs = pipeline_topics(settings.partitions, settings.app_id)
    for subscriber in load(settings.subscribers_file):
        specs += notify_topic_specs(subscriber, settings.partitions)
    return await ensure_topics(settings.bootstrap, specs)
