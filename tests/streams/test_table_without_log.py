"""The citizens table's RocksDB stores write no write-ahead log (``streams.faust_app.
without_write_ahead_log``), and what that relies on holds: after a SIGKILL a store keeps a prefix
of its writes, so a changelog offset that survived has every row written before it, and a
store closed cleanly keeps everything. The worker's own kill tests (tests/integration/
test_citizen_step_crash.py) restart on the stores their SIGKILLs left."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from streams.faust_app import TableRows, table_partition_of, without_write_ahead_log


def _table(store: str, datadir: str) -> Any:
    app = faust.App("nolog", store=store, datadir=datadir, key_serializer="raw", value_serializer="raw")
    return app.Table("citizens", partitions=2, key_type=bytes, value_type=bytes)


def _log_bytes(datadir: str) -> int:
    return sum(f.stat().st_size for f in Path(datadir).rglob("*.log") if f.name != "LOG")


def _write_rows(table: Any, count: int) -> None:
    rows = TableRows(table)
    with table_partition_of(1):
        for i in range(count):
            rows[f"citizen-{i}".encode()] = b"r" * 2000
    table.data.set_persisted_offset(TP(table.changelog_topic_name, 1), count - 1)


def test_the_citizens_stores_write_no_log_and_another_store_is_left_alone() -> None:
    unlogged, logged = tempfile.mkdtemp(), tempfile.mkdtemp()
    table = _table("rocksdb://", unlogged)
    assert without_write_ahead_log(table)
    _write_rows(table, 200)
    control = _table("rocksdb://", logged)
    _write_rows(control, 200)
    assert _log_bytes(logged) > 200 * 2000  # the default: every row logged
    assert _log_bytes(unlogged) == 0
    with table_partition_of(1):
        assert TableRows(table).get(b"citizen-199") == b"r" * 2000
    assert table.data.persisted_offset(TP(table.changelog_topic_name, 1)) == 199
    assert not without_write_ahead_log(_table("memory://", tempfile.mkdtemp()))


_CHILD = textwrap.dedent("""
    import os, signal, sys
    from faust.types import TP
    sys.path[:0] = [{repo!r}, {tests!r}]
    from test_table_without_log import _table
    from streams.faust_app import TableRows, table_partition_of, without_write_ahead_log
    table = _table("rocksdb://", {datadir!r})
    without_write_ahead_log(table)
    rows, tp = TableRows(table), TP(table.changelog_topic_name, 1)
    with table_partition_of(1):
        for i in range(100):
            rows[f"early-{{i}}".encode()] = b"e" * 500
        table.data.set_persisted_offset(tp, 99)
        table.data._db_for_partition(1).flush()  # as a full write buffer is flushed
        for i in range(100):
            rows[f"late-{{i}}".encode()] = b"l" * 500
        table.data.set_persisted_offset(tp, 199)
    if {kill!r}:
        os.kill(os.getpid(), signal.SIGKILL)
    table.data._dbs.clear()  # what Faust's store does on stop: the stores are closed as they go
""")


def _run_child(datadir: str, kill: bool) -> int:
    here = Path(__file__).resolve()
    code = _CHILD.format(repo=str(here.parents[2]), tests=str(here.parent), datadir=datadir, kill=kill)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode


def _reopened(datadir: str) -> tuple[int | None, Counter[str]]:
    """The changelog offset partition 1's store holds, and how many rows of each kind."""
    table = _table("rocksdb://", datadir)
    offset = table.data.persisted_offset(TP(table.changelog_topic_name, 1))
    kinds = Counter(k.decode().split("-")[0] for k in table.data._db_for_partition(1).keys()  # noqa: SIM118 - an Rdict
                    if not k.startswith(b"__faust"))
    return offset, kinds


def test_a_sigkilled_store_keeps_a_prefix_its_changelog_offset_covers_and_a_clean_close_keeps_all() -> None:
    killed = tempfile.mkdtemp()
    assert _run_child(killed, kill=True) == -9
    offset, kinds = _reopened(killed)
    # The flushed part survived, the offset it wrote last with it; the rest is for the
    # changelog restore to bring back (from offset 100 on).
    assert offset == 99 and kinds == {"early": 100}
    closed = tempfile.mkdtemp()
    assert _run_child(closed, kill=False) == 0
    offset, kinds = _reopened(closed)
    assert offset == 199 and kinds == {"early": 100, "late": 100}


_RESTORE_CHILD = textwrap.dedent("""
    import os, signal, sys
    from aiokafka import ConsumerRecord
    sys.path[:0] = [{repo!r}, {tests!r}]
    from test_table_without_log import _table
    from streams.changelog_runs import rocksdict_writer
    from streams.faust_app import TableRows, table_partition_of, without_write_ahead_log
    table = _table("rocksdb://", {datadir!r})
    without_write_ahead_log(table)
    with table_partition_of(1):
        for i in range(50):
            TableRows(table)[f"step-{{i}}".encode()] = b"s" * 500  # unlogged, in memory
    def run(start):
        return [ConsumerRecord("t", 1, start + i, 0, 0, f"run-{{start + i}}".encode(), b"r" * 500, None, 0, 0, [])
                for i in range(100)]
    write = rocksdict_writer(table.data, 1)
    write(run(0), 99)
    write(run(100), 199)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_restore_s_runs_survive_a_sigkill_with_their_offset_and_the_unlogged_writes_before_them() -> None:
    """A bulk restore or a standby copy writes its runs with the log (streams.changelog_runs), so
    a crash in the middle goes on from the last run; the unlogged writes before the first run
    were flushed first, so a surviving run's offset never claims rows the crash lost."""
    here = Path(__file__).resolve()
    datadir = tempfile.mkdtemp()
    code = _RESTORE_CHILD.format(repo=str(here.parents[2]), tests=str(here.parent), datadir=datadir)
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == -9
    offset, kinds = _reopened(datadir)
    assert offset == 199 and kinds == {"step": 50, "run": 200}


def test_a_restore_flushes_the_store_once_before_its_first_run_not_before_every_run() -> None:
    """A flush per run would make a small file per fetched run: a million-row restore would
    stall on its own compactions."""
    from aiokafka import ConsumerRecord

    from streams.changelog_runs import rocksdict_writer

    table = _table("rocksdb://", tempfile.mkdtemp())
    without_write_ahead_log(table)
    store = table.data
    flushes: list[int] = []

    class Counting:
        def __init__(self, db: Any) -> None:
            self._db = db

        def flush(self) -> None:
            flushes.append(1)
            self._db.flush()

        def __getattr__(self, name: str) -> Any:
            return getattr(self._db, name)

    real = store._db_for_partition
    store._db_for_partition = lambda partition: Counting(real(partition))
    write = rocksdict_writer(store, 1)
    assert write is not None
    for start in (0, 10, 20):
        write([ConsumerRecord("t", 1, start + i, 0, 0, f"k{start + i}".encode(), b"v", None, 0, 0, [])
               for i in range(10)], start + 9)
    assert len(flushes) == 1
    assert real(1).get(b"k29") == b"v" and store.persisted_offset(TP(table.changelog_topic_name, 1)) == 29
