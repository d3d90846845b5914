"""The one place that builds the worker: the Faust app, its topics and its one table, the codec,
the sinks, and the steps, then ties them to batch loops, timers and rebalance signals.

    ingress topics --door (group <app>-door)--> <app>.internal.citizen-events --+
                                                                                 +--citizen step-->
    <app>.archive-receipts -----------------------------------------------------+   outputs, then rows
    deadline timer (index rebuilt from row headers) --DeadlineDue--> citizen-events

Faust owns the citizens table: its changelog, its recovery, and the group that decides which
worker holds which of its partitions. The two steps read their topics in batches on aiokafka
(streams.ingress_loop, streams.citizen_loop) rather than through Faust's per-message streams;
the citizen step reads exactly the table partitions Faust has assigned and recovered here.
Processing is at-least-once (Faust's exactly-once mode has open bugs, #323 and #517): outputs
carry ids derived from their cause and the state records what has acted, so a replay sends
duplicates at most, never gaps.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TP

import schemas.archive_records  # noqa: F401 - registers the records the codec encodes
from processors.routing import subscriber_for_topic
from schemas.codec import Codec
from schemas.topics import (
    archive_receipts_topic,
    citizen_events_topic,
    citizen_keys_topic,
    table_assignment_topic,
)
from sinks.crypto import MasterKey
from sinks.kafka_out import KafkaOutputs
from streams.batch_producer import BatchProducer
from streams.citizen_loop import CitizenLoop
from streams.citizen_repo import CitizenRepository
from streams.citizen_step import CitizenStep
from streams.clock import Clock
from streams.consumed import ConsumedMessage
from streams.crash_points import CrashPoints
from streams.dead_letters import DeadLetters
from streams.deadline_timer import DeadlineTimer
from streams.deadlines import DeadlineIndex
from streams.door import Door
from streams.faust_app import (
    TableChangelog,
    TableRows,
    build_app,
    flush_stores,
    instance_id,
    table_partition_of,
    without_write_ahead_log,
)
from streams.handoff import DecodedHandOff
from streams.ingress_loop import IngressLoop, door_group
from streams.kafka_auth import client_config
from streams.key_shelf import RocksWrappedKeys
from streams.keystore import KeyStore
from streams.logs import get_logger
from streams.metrics import Metrics
from streams.operators import Operators
from streams.outbox import KafkaSender
from streams.saga import SagaRunner
from streams.saga_watch import SagaWatch
from streams.sealing import Sealer
from streams.settings import Settings
from streams.step_policy import GC_THRESHOLDS, HANDOVER_WAIT_S, MAX_RECORD_BYTES
from streams.store_policy import KEY_SHELF_BLOCK_CACHE, KEY_SHELF_WRITE_BUFFER, rocksdb_options
from streams.topics import COMPACTED, INGRESS_TOPICS, ensure_topics, notify_topic_specs
from streams.web import Readiness

__all__ = ["DoorWorker", "Worker", "build_door_worker", "build_worker", "loop_or_exit", "prepare_topics"]

log = get_logger("dfdg.worker")

# The exit code of a worker that stops mid-batch (a failed acknowledgement, a cancelled
# batch): it leaves without acknowledging the batch, so a restart replays it (EX_TEMPFAIL).
EXIT_REPLAY = 75


@dataclass(frozen=True)
class Worker:
    app: faust.App
    operators: Operators
    timer: DeadlineTimer


@dataclass(frozen=True)
class Outgoing:
    """What both steps send through: one producer, the data keys, and the dead-letter topic."""

    producer: BatchProducer
    sender: KafkaSender
    sealer: Sealer
    dead_letters: DeadLetters


def _outgoing(settings: Settings, metrics: Metrics) -> Outgoing:
    producer = BatchProducer(settings.bootstrap, MAX_RECORD_BYTES, client_config())
    sender = KafkaSender(producer, MAX_RECORD_BYTES)
    # Crypto-shredding (docs/security.md): everything personal is sealed with the citizen's key.
    keys = KeyStore(settings.bootstrap, citizen_keys_topic(settings.app_id), MasterKey.from_env(settings.dev_mode),
                    send=lambda topic, row, wrapped: sender.send(topic, row, wrapped, first=True),
                    shelf=RocksWrappedKeys(settings.key_shelf_dir, KEY_SHELF_WRITE_BUFFER, KEY_SHELF_BLOCK_CACHE),
                    opened=settings.key_cache_citizens)
    sealer = Sealer(keys, settings.dev_mode)
    return Outgoing(producer, sender, sealer, DeadLetters(sender, sealer, metrics, settings.app_id))


def _door(settings: Settings, clock: Clock, codec: Codec, metrics: Metrics, out: Outgoing,
          on_assignment: Callable[[bool], None] | None = None, handoff: DecodedHandOff | None = None) -> IngressLoop:
    door = Door(codec, out.sealer, out.sender, out.dead_letters, metrics, clock, settings.pseudonym_key,
                citizen_events_topic(settings.app_id), handoff)
    return IngressLoop(settings.bootstrap, settings.app_id, instance_id(settings), INGRESS_TOPICS,
                       lambda messages: _crash_only(door.handle(messages)), client_config(), on_assignment)


def _ready_with_the_group(readiness: Readiness) -> Callable[[bool], None]:
    """The door process is ready while its group has given it partitions: it has no table, so
    assigned is recovered (the combined worker's readiness follows Faust's table instead)."""
    def follow(assigned: bool) -> None:
        if assigned:
            readiness.mark_assigned()
            readiness.mark_recovered()
        else:
            readiness.mark_revoked()

    return follow


@dataclass(frozen=True)
class DoorWorker:
    """The door alone (``DFDG_ROLE=door``): no Faust app, no table, no timers; see streams.door_process."""

    ingress: IngressLoop
    operators: Operators
    outgoing: Outgoing


def build_door_worker(settings: Settings, clock: Clock) -> DoorWorker:
    gc.set_threshold(*GC_THRESHOLDS)
    codec, metrics = Codec.default(), Metrics()
    out = _outgoing(settings, metrics)
    operators = Operators(metrics, DeadlineIndex(), clock, settings.bootstrap, door_group(settings.app_id),
                          out.sealer.keys.loaded)
    return DoorWorker(_door(settings, clock, codec, metrics, out, _ready_with_the_group(operators.readiness)),
                      operators, out)


def build_worker(settings: Settings, clock: Clock, tick_seconds: float = 1.0) -> Worker:
    """The Faust worker: the citizen step, its table and timers, and the door too unless
    ``settings.role`` is ``steps`` (the door then runs in a process of its own)."""
    gc.set_threshold(*GC_THRESHOLDS)
    app = build_app(settings)
    codec = Codec.default()
    metrics = Metrics()
    events_name = citizen_events_topic(settings.app_id)
    receipts_name = archive_receipts_topic(settings.app_id)
    # Deleted citizens' rows are replaced by a marker, and compaction must remove the old
    # versions within a bounded time (R7), not whenever the cleaner gets round to it.
    table = app.Table("citizens", partitions=settings.partitions, key_type=bytes, value_type=bytes,
                      extra_topic_configs=COMPACTED, options=_store_options(settings))
    without_write_ahead_log(table)  # the changelog holds every row (streams.faust_app)

    out = _outgoing(settings, metrics)
    producer, sender, sealer, dead_letters = out.producer, out.sender, out.sealer, out.dead_letters

    async def ensure_notify_topic(name: str) -> None:
        await ensure_topics(settings.bootstrap, notify_topic_specs(subscriber_for_topic(name), settings.partitions))

    outputs = KafkaOutputs(codec, lambda topic, key, value, headers: sender.send(topic, key, value, headers),
                           ensure_notify_topic)
    crash = CrashPoints(flush=lambda: flush_stores(table))
    index = DeadlineIndex()
    repo = CitizenRepository(TableRows(table), sealer, TableChangelog(table, sender.send))
    sagas = SagaWatch(settings.archive_retry)
    saga = SagaRunner(outputs, sender, codec, sealer, settings.archive_inbox, metrics, crash, sagas,
                      settings.archive_retry)
    # The door of this process hands its decoded events to the step (streams.handoff), for the
    # partitions the step's loop (``citizens``, below) reads; with the door in a process of its
    # own there is nothing to hand over.
    handoff = DecodedHandOff(lambda: citizens.owned) if settings.role != "steps" else None
    if handoff is not None:
        sealer.forget_on_shred(handoff.forget)
    step = CitizenStep(repo, sealer, codec, outputs, dead_letters, saga, index, metrics, clock, receipts_name, crash,
                       handoff)

    changelog = table.changelog_topic.get_topic_name()

    def owned_partitions() -> set[int]:
        """The citizens table's partitions this worker holds (Faust's assignment)."""
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog}

    timer = DeadlineTimer(index, repo, codec, sender, clock, f"{settings.app_id}-deadlines", events_name,
                          owned_partitions)
    operators = Operators(metrics, index, clock, settings.bootstrap, settings.app_id, lambda: timer.ready, sagas)

    if settings.role != "steps":
        ingress = _door(settings, clock, codec, metrics, out, handoff=handoff)
        app.stop_first.append(ingress.stop)

        @app.task
        async def read_ingress() -> None:
            await loop_or_exit(ingress.run(), "door")

    # Nothing is written to it: subscribing makes Faust assign the citizens table's partitions
    # with it and keep polling (schemas.topics.table_assignment_topic).
    @app.agent(app.topic(table_assignment_topic(settings.app_id), key_type=bytes, value_type=bytes,
                         partitions=settings.partitions), name="table-assignment")
    async def table_assignment(stream: faust.StreamT) -> None:
        async for _ in stream:
            pass

    async def citizen_batch(partition: int, messages: Sequence[ConsumedMessage]) -> None:
        with table_partition_of(partition):
            await _crash_only(step.handle(partition, messages))

    def start_at(partition: int) -> dict[str, int]:
        with table_partition_of(partition):
            return repo.positions()

    citizens = CitizenLoop(settings.bootstrap, settings.app_id, (events_name, receipts_name), citizen_batch,
                           start_at, client_config())

    @app.task
    async def read_citizen_events() -> None:
        await loop_or_exit(citizens.run(), "citizen step")

    # On a stop, both loops finish and commit the batch in hand before Faust stops its tables.
    app.stop_first.append(citizens.revoke)

    async def close_keys() -> None:
        # Last: both loops have stopped, and the timers open no key. A clean stop leaves no copy
        # of the key topic on disk (docs/security.md); a stop while the keys still load leaves it
        # to the next start on this data directory, as a crash does.
        if sealer.keys.loaded():
            await sealer.stop()

    app.stop_first.append(close_keys)

    @app.timer(interval=tick_seconds, name="deadlines")
    async def deadlines() -> None:
        await timer.fire_due()

    # Every 5 s, or as often as the shortest backoff when that is shorter (a test's policy).
    @app.timer(interval=min(5.0, settings.archive_retry.first.total_seconds()), name="archive-retries")
    async def archive_retries() -> None:
        # R7.2: a failed delivery whose backoff is over goes back to its citizen's step.
        if timer.ready:
            await sagas.wake_due(clock.now(), owned_partitions, sender, codec, receipts_name)

    # Which rebalance the table partitions being recovered belong to (Faust counts them as each
    # starts): a completion signal from an older one must not make the loop read anything.
    assigned_in = [-1]

    def stored_up_to(partition: int) -> object:
        """The changelog offset a partition's store holds rows up to: a partition whose store
        took in rows while the steps were stopped (a restore) is not kept as the index has it."""
        return table.data.persisted_offset(TP(changelog, partition))

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        assigned_in[0] = app.rebalancing_count
        # Which partitions were held through the rebalance, for the rebuild to keep.
        timer.assigned(owned_partitions(), app.consumer_generation_id)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        # The batch in hand is committed before another worker takes over; one that cannot
        # finish in time must not finish after the next owner has started: exit, and replay it.
        try:
            await asyncio.wait_for(citizens.revoke(), HANDOVER_WAIT_S)
        except TimeoutError:
            log.critical("the citizen step's batch did not finish before the hand-over; exiting so that "
                         "it is replayed", exit_code=EXIT_REPLAY)
            os._exit(EXIT_REPLAY)
        timer.revoked(stored_up_to)  # the index and the sagas stay: the rebuild keeps what is held through
        operators.readiness.mark_revoked()

    @app.on_rebalance_complete.connect
    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
        # Only for the latest rebalance: an older one's recovery can complete while a newer one
        # is under way, whose stores Faust hands over meanwhile.
        rebalance = app.rebalancing_count
        latest = lambda: app.rebalancing_count == rebalance == assigned_in[0]  # noqa: E731
        if not latest():
            log.info("table recovery of an older rebalance completed; its partitions are not read")
            return
        # restore, not update: a saga that owes a delivery and was never retried is due once (R7.2).
        # Only the rows of partitions new to this worker are read; the others keep their sagas.
        if not await timer.rebuild_in_turns(
                also=lambda key, header: sagas.restore(key, header.partition, header.saga, header.erased),
                current=latest, kept=sagas.keep_only, marks=stored_up_to):
            return  # another rebalance began meanwhile: its completion rebuilds and assigns
        await citizens.assign(owned_partitions())
        operators.readiness.mark_assigned()
        operators.readiness.mark_recovered()

    @app.task
    async def load_data_keys() -> None:
        await sealer.start()

    @app.on_before_shutdown.connect
    async def stop_producer(sender: Any, **kwargs: Any) -> None:
        await producer.stop()

    @app.task
    async def serve_operator_pages() -> None:
        await operators.serve(settings.web_host, settings.web_port)

    @app.timer(interval=5.0, name="operator-metrics")
    async def refresh_operator_metrics() -> None:
        await operators.refresh()

    return Worker(app, operators, timer)


def _store_options(settings: Settings) -> dict[str, int] | None:
    """RocksDB's memory within the worker's budget; other stores take no options."""
    if not settings.store.startswith("rocksdb"):
        return None
    return rocksdb_options(settings.rocksdb_memory_mb, settings.partitions)


async def loop_or_exit(loop: Awaitable[None], name: str) -> None:
    """Run one of the worker's batch loops; a worker whose loop has stopped must not look alive."""
    try:
        await loop
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - exit, and let the supervisor restart the worker
        log.critical("a batch loop stopped; exiting so that the worker restarts", loop=name,
                     error=type(exc).__name__, exit_code=EXIT_REPLAY)
        os._exit(EXIT_REPLAY)


async def _crash_only(step: Awaitable[None]) -> None:
    """Run one batch; if it cannot finish, leave at once rather than let it be acknowledged.

    A batch whose effects were not all acknowledged by the broker, or that was cancelled
    halfway by a shutdown, must be replayed, and the loop that ran it must not go on to later
    messages of its partitions as if it had finished (a later batch's positions would cover
    it): so the process exits without a commit, and the restarted worker (static membership:
    within seconds) replays it."""
    try:
        await step
    except BaseException as exc:  # noqa: BLE001 - anything unfinished means replay
        log.critical("batch not finished; exiting so that it is replayed", error=type(exc).__name__,
                     exit_code=EXIT_REPLAY)
        os._exit(EXIT_REPLAY)


async def prepare_topics(settings: Settings) -> list[str]:
    """The pipeline's topics, and every registered subscriber's, so a subscriber can connect
    (and be granted access) before its first notification."""
    from sinks.registry_store import load
    from streams.topics import pipeline_topics

    specs = pipeline_topics(settings.partitions, settings.app_id, settings.ingress_retention_days)
    for subscriber in load(settings.subscribers_file):
        specs += notify_topic_specs(subscriber, settings.partitions)
    return await ensure_topics(settings.bootstrap, specs)

