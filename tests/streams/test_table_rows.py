"""The citizens table's rows as the worker reads them for a rebuild or a window move
(``streams.faust_app.TableRows``): the rows of the partitions it holds, exactly as Faust's own
``items()`` gives them, without Faust's per-row serializer calls."""

from __future__ import annotations

import tempfile
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.faust_app import TableRows, table_partition_of


def _table(store: str) -> Any:
    app = faust.App("rows", store=store, datadir=tempfile.mkdtemp(), key_serializer="raw",
                    value_serializer="raw")
    table = app.Table("citizens", partitions=3, key_type=bytes, value_type=bytes)
    held = {TP(table.changelog_topic_name, p) for p in (0, 2)}
    app.assignor.assigned_actives = lambda: held  # type: ignore[method-assign]
    return table


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_table_rows_are_the_held_partitions_rows_as_faust_gives_them(store: str) -> None:
    table = _table(store)
    data = table.data
    for partition in range(3):
        for i in range(5):
            key, row = f"p{partition}-{i}".encode(), f"row {partition} {i}".encode()
            if store == "rocksdb://":
                data._db_for_partition(partition).put(key, row)
            else:
                data[key] = row
    rows = TableRows(table)
    assert sorted(rows.items()) == sorted(data.items())
    assert sorted(rows.keys()) == sorted(data.keys())
    if store == "rocksdb://":  # only the partitions held: 0 and 2
        assert {k[:2] for k in rows.keys()} == {b"p0", b"p2"}  # noqa: SIM118 - Rows, not a dict


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_table_rows_read_and_write_the_partition_in_hand_as_faust_does(store: str) -> None:
    # The step's reads and writes go to the database of the partition it handles, not through
    # Faust's mapping: the same rows must come out either way, and land where Faust looks.
    table = _table(store)
    rows = TableRows(table)
    for partition in (0, 2):
        with table_partition_of(partition):
            rows[f"c{partition}".encode()] = f"row {partition}".encode()
            assert rows.get(f"c{partition}".encode()) == f"row {partition}".encode()
            assert table.data.get(f"c{partition}".encode()) == f"row {partition}".encode()
            table.data[f"f{partition}".encode()] = b"written by faust"
            assert rows.get(f"f{partition}".encode()) == b"written by faust"
            assert rows.get(b"absent") is None
    if store == "rocksdb://":
        assert table.data._db_for_partition(2).get(b"c2") == b"row 2"
        assert table.data._db_for_partition(0).get(b"c2") is None
    # Outside a partition (a tool's lookup), Faust's own path finds the row wherever it is.
    assert rows.get(b"c2") == b"row 2"
