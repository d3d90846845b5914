"""The Faust application, and the few Faust internals the steps rely on: the current event's
context, the table's per-partition stores, and their persisted offsets.

Static group membership: each worker joins with a stable ``group.instance.id`` (derived from
its data directory, which only one worker can use at a time), so a restarted worker takes
back its own partitions at once instead of waiting for its old session to expire; a worker
that is gone for good loses them after ``SESSION_TIMEOUT_S``.
"""

from __future__ import annotations

import hashlib
import socket
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import faust
from faust import streams as faust_streams
from faust.types import TP

from streams.bulk_restore import BulkTableManager
from streams.kafka_auth import faust_credentials
from streams.settings import Settings
from streams.step_policy import HEARTBEAT_INTERVAL_S, MAX_RECORD_BYTES, REBALANCE_TIMEOUT_S, SESSION_TIMEOUT_S

__all__ = [
    "TableChangelog",
    "TableRows",
    "WorkerApp",
    "build_app",
    "instance_id",
    "table_partition_of",
    "without_write_ahead_log",
]


def instance_id(settings: Settings) -> str:
    data_dir = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]
    return f"{settings.app_id}-{socket.gethostname()}-{data_dir}"


class WorkerApp(faust.App):
    """The Faust app, stopping the steps' loops before Faust stops its consumer and tables.

    Faust stops its consumer, its tables (their stores) and, in ``on_before_shutdown``, the
    steps' producer before it cancels the app's tasks; a batch still in hand then would fail
    and end the worker with code 75. The hooks in ``stop_first`` (each loop: finish the batch
    in hand, commit it, read nothing more) run before all that."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_first: list[Callable[[], Awaitable[None]]] = []

    async def on_stop(self) -> None:
        for stop in self.stop_first:
            await stop()
        await super().on_stop()


def build_app(settings: Settings) -> WorkerApp:
    return WorkerApp(
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
        # The steps send through their own batch producer (streams.batch_producer); Faust's
        # producer is left with Faust's own records, where a few ms of linger costs nothing.
        producer_linger=0.005,
        producer_max_request_size=MAX_RECORD_BYTES,
        broker_commit_every=500,
        broker_commit_interval=1.0,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_S,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        consumer_group_instance_id=instance_id(settings),
        table_standby_replicas=settings.standby_replicas,
        TableManager=BulkTableManager,
        broker_credentials=faust_credentials(),
    )


def without_write_ahead_log(table: Any) -> bool:
    """Open each RocksDB partition store of ``table`` with RocksDB's write-ahead log off for
    every write that does not ask for it (the step's rows and positions, Faust's own recovery
    and its changelog offset; the bulk restore's and standby copy's runs ask for it,
    ``streams.changelog_runs``); False for a store that is not RocksDB (``memory://``).

    The log made every citizen row one more ``write(2)`` of the whole row (~9 µs of a put's
    12 here), and the changelog already holds every row. Why nothing is lost without it:
    a crash loses only the writes still in memory, and with one column family, one writer and
    no logged write after unlogged ones still in memory, what survives is a prefix of the
    writes. The changelog offset Faust restores from is one of those writes, made after the
    rows and the positions row it covers are in the store and acknowledged by the changelog
    (``CitizenStep.handle``): whenever it survives, so does everything before it, and the
    restart restores the rest from the changelog. A store dropped by Faust (a stop, a revoke)
    is flushed as it goes.
    docs/operations.md; the kill tests in tests/integration/test_citizen_step_crash.py
    restart on the store a SIGKILL left."""
    options = getattr(table.data, "rocksdb_options", None)
    if options is None or not getattr(options, "use_rocksdict", False):
        return False
    from rocksdict import WriteOptions

    open_store = options.open

    def open_without_log(path: Any, *, read_only: bool = False) -> Any:
        store = open_store(path, read_only=read_only)
        unlogged = WriteOptions()
        unlogged.disable_wal = True
        store.set_write_options(unlogged)
        return store

    options.open = open_without_log
    return True


def flush_stores(table: Any) -> None:
    """Write every RocksDB partition store of ``table`` held here to disk (a test hook's: the
    worker itself leaves that to RocksDB)."""
    for db in list(getattr(table.data, "_dbs", {}).values()):
        db.flush()


class _PartitionEvent:
    """What a Faust store reads of the current event: the partition (``event.message.partition``)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@contextmanager
def table_partition_of(partition: int) -> Iterator[None]:
    """Make the table read and write ``partition`` while a batch of that partition is handled.

    A Faust table's store takes the partition of a key from the current event (its RocksDB
    database per partition follows it). The citizen step's batches are read outside Faust's
    streams (``streams.citizen_loop``), so the step names the partition itself."""
    event = _PartitionEvent(partition)
    token = faust_streams._current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class TableRows:
    """The citizens table's local store, read and written directly.

    The step writes rows here and sends their changelog records itself (``TableChangelog``),
    batched with its other records, rather than through the table's ``__setitem__`` (a
    buffered send and a future per key). The store is the table's own, so Faust's recovery,
    rebalancing and changelog restore are unchanged."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._direct: bool | None = None

    def get(self, key: bytes) -> bytes | None:
        db = self._partition_db()
        row: bytes | None = db.get(key) if db is not None else self._table.data.get(key)
        return row

    def __setitem__(self, key: bytes, row: bytes) -> None:
        db = self._partition_db()
        if db is not None:
            db.put(key, row)
        else:
            self._table.data[key] = row

    def _partition_db(self) -> Any:
        """The RocksDB database of the partition in hand (``table_partition_of``), or None to go
        through Faust's store. Faust's path is the same ``get``/``put`` on that database, behind
        a mapping lookup, two serializer calls and the current event's weak reference: ~6 µs of
        a row read or write, twice per event. Only with raw serializers (the rows as stored)."""
        if self._direct is None:
            data = self._table.data
            self._direct = self._raw and hasattr(data, "_db_for_partition")
        if not self._direct:
            return None
        current = faust_streams._current_event.get(None)
        event = current() if current is not None else None
        return None if event is None else self._table.data._db_for_partition(event.message.partition)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        # The rows of the partitions this worker holds, as stored. Faust's own ``items()`` runs
        # every key and value through the table's serializers, raw here: ~2 µs a row, a third of
        # a rebuild's time over a million rows. A store without the raw iterator (memory://)
        # goes through it.
        data = self._table.data
        raw = getattr(data, "_iteritems", None)
        yield from (raw() if raw is not None and self._raw else data.items())

    def items_in(self, partitions: Collection[int]) -> Iterator[tuple[bytes, bytes]]:
        """The rows of these partitions (of those held) as stored; a store that cannot read a
        partition alone gives every row held (``CitizenRepository.window_rows`` sorts them)."""
        data = self._table.data
        if not (self._raw and hasattr(data, "_visible_items") and hasattr(data, "_dbs_for_actives")):
            yield from self.items()
            return
        held = {id(db) for db in data._dbs_for_actives()}
        for partition in sorted(partitions):
            db = data._dbs.get(partition)
            if db is not None and id(db) in held:
                yield from data._visible_items(db)

    def keys(self) -> Iterator[bytes]:
        data = self._table.data
        raw = getattr(data, "_iterkeys", None)
        yield from (raw() if raw is not None and self._raw else data.keys())

    @property
    def _raw(self) -> bool:
        """Keys and values are stored as given: raw serializers for both (what build_app sets)."""
        return bool(self._table.key_serializer == "raw" and self._table.value_serializer == "raw")


class TableChangelog:
    """The citizens table's changelog topic, written through the step's outbox."""

    def __init__(self, table: Any, send: Any) -> None:
        self._table = table
        self._send = send
        self.topic: str = table.changelog_topic.get_topic_name()

    async def send(self, partition: int, key: bytes, row: bytes) -> None:
        await self._send(self.topic, key, row, None, partition)

    def persisted(self, offsets: dict[int, int]) -> None:
        # What Faust's own changelog callback does: recovery after a restart starts past these.
        for partition, offset in offsets.items():
            self._table.data.set_persisted_offset(TP(self.topic, partition), offset)
