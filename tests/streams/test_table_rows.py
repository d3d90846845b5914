"""The citizens table's rows as the worker reads them for a rebuild or a window move
(``streams.faust_app.TableRows``): the rows of the partitions it holds, exactly as Faust's own
``items()`` gives them, without Faust's per-row serializer calls."""

from __future__ import annotations

import tempfile
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.faust_app import TableRows


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
