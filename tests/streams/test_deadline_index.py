"""The in-memory deadline index (R3.1 and every other deadline): what pops when, and what never pops twice."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime, timedelta

from processors.clock import passed_at
from processors.model import Deadline
from streams.citizen_repo import CitizenRepository, PartitionedRows
from streams.citizen_rows import RowHeader, decode_header, encode_row
from streams.clock import ManualClock
from streams.deadline_timer import DeadlineTimer
from streams.deadlines import DeadlineIndex, DueDeadline, entries_for
from tests.processors.test_deceased import _saga

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _due(citizen: str, deadline_id: str, hours: float, partition: int = 0) -> DueDeadline:
    fires_at = (T0 + timedelta(hours=hours)).timestamp()
    return DueDeadline(fires_at, citizen, deadline_id, "R3.1", "2026-03-01", "case-1", partition)


def _ids(entries: list[DueDeadline]) -> list[str]:
    return [e.deadline_id for e in entries]


def test_r3_1_pops_in_due_order_and_only_what_is_due() -> None:
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", "a-late", 5), _due("a", "a-early", 1)])
    index.replace_citizen("b", [_due("b", "b-mid", 3)])
    assert len(index) == 3
    assert index.pop_due(T0, {0}) == []
    assert _ids(index.pop_due(T0 + timedelta(hours=3), {0})) == ["a-early", "b-mid"]
    assert len(index) == 1
    assert _ids(index.pop_due(T0 + timedelta(hours=10), {0})) == ["a-late"]
    assert index.pop_due(T0 + timedelta(days=100), {0}) == []
    assert len(index) == 0


def test_r3_1_pop_due_respects_the_limit_and_keeps_the_rest() -> None:
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", f"d{i}", i) for i in range(5)])
    later = T0 + timedelta(hours=10)
    assert _ids(index.pop_due(later, {0}, limit=2)) == ["d0", "d1"]
    assert _ids(index.pop_due(later, {0})) == ["d2", "d3", "d4"]


def test_r3_1_a_cancelled_deadline_never_pops() -> None:
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", "keep", 1), _due("a", "cancel", 2)])
    index.replace_citizen("a", [_due("a", "keep", 1)])
    assert _ids(index.pop_due(T0 + timedelta(hours=5), {0})) == ["keep"]
    index.replace_citizen("b", [_due("b", "gone", 1)])
    index.replace_citizen("b", [])
    assert index.pop_due(T0 + timedelta(hours=5), {0}) == []
    assert len(index) == 0
    assert index.oldest_overdue_seconds(T0 + timedelta(hours=5)) == 0.0


def test_r3_1_only_actively_owned_partitions_fire_and_the_others_stay() -> None:
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", "on-0", 1, partition=0)])
    index.replace_citizen("b", [_due("b", "on-1", 1, partition=1)])
    later = T0 + timedelta(hours=2)
    assert _ids(index.pop_due(later, {0})) == ["on-0"]
    assert index.pop_due(later, {0}) == []
    assert len(index) == 1
    assert index.oldest_overdue_seconds(later) == 3600.0
    assert _ids(index.pop_due(later, {0, 1})) == ["on-1"]


def test_r3_1_an_inflight_deadline_is_not_pushed_again_when_the_row_is_rewritten() -> None:
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", "fired", 1), _due("a", "later", 50)])
    now = T0 + timedelta(hours=2)
    assert _ids(index.pop_due(now, {0})) == ["fired"]
    # Another event for the citizen rewrites the row before its DeadlineDue is handled:
    # the row still lists the in-flight deadline, which must not fire a second time.
    index.replace_citizen("a", [_due("a", "fired", 1), _due("a", "later", 50), _due("a", "new", 1.5)])
    assert _ids(index.pop_due(now, {0})) == ["new"]
    # The DeadlineDue is handled: the row drops it; nothing more is due.
    index.replace_citizen("a", [_due("a", "later", 50)])
    assert index.pop_due(now, {0}) == []
    assert _ids(index.pop_due(T0 + timedelta(hours=60), {0})) == ["later"]


def test_r3_1_a_deadline_set_again_after_it_was_handled_fires_again() -> None:
    # In-flight memory ends once the row no longer lists the id; a later row naming it is new.
    index = DeadlineIndex()
    index.replace_citizen("a", [_due("a", "x", 1)])
    now = T0 + timedelta(hours=2)
    assert _ids(index.pop_due(now, {0})) == ["x"]
    index.replace_citizen("a", [])
    index.replace_citizen("a", [_due("a", "x", 1)])
    assert _ids(index.pop_due(now, {0})) == ["x"]


def _row(partition: int, pending: list[Deadline], erased: bool = False) -> bytes:
    """A ``citizens`` table row; the sealed state is opaque here (the index never opens it)."""
    return encode_row(RowHeader(partition, tuple(pending), erased=erased), b"" if erased else b"\xd5\x01sealed")


def _from_headers(rows: list[tuple[str, bytes]]) -> list[tuple[str, int, tuple[Deadline, ...], int]]:
    return [(key, h.partition, h.pending, 0) for key, h in ((k, decode_header(r)) for k, r in rows)]


def test_r3_1_rebuild_replaces_everything_from_the_table_rows() -> None:
    handover = date(2026, 3, 1)
    deadlines = [Deadline("R3.1", handover, "case-1"), Deadline("R5.1", date(2026, 3, 31), "case-1")]
    row = _row(3, deadlines)
    header = decode_header(row)
    decoded = entries_for("a", header.partition, header.pending)
    assert {e.deadline_id for e in decoded} == {d.deadline_id for d in deadlines}
    assert all(e.partition == 3 and e.citizen_key == "a" for e in decoded)

    index = DeadlineIndex()
    index.replace_citizen("stale", [_due("stale", "old", 0)])
    index.rebuild(_from_headers([("a", row), ("b", _row(1, [Deadline("R3.1", date(2026, 2, 1), "case-2")]))]))
    assert len(index) == 3
    at_handover = passed_at(handover)
    assert index.pop_due(at_handover - timedelta(seconds=1), {1, 3})[0].citizen_key == "b"
    popped = index.pop_due(at_handover, {1, 3})
    assert [(e.citizen_key, e.rule) for e in popped] == [("a", "R3.1")]
    assert index.pop_due(at_handover, {1, 3}) == []


def test_r3_1_rebuild_forgets_inflight_so_the_table_row_fires_again() -> None:
    # After a rebalance the table is the truth: a deadline sent but not yet handled is sent
    # again; the processor's fired set makes the repeat a no-op.
    index = DeadlineIndex()
    rows = _from_headers([("a", _row(0, [Deadline("R3.1", date(2026, 2, 1), "case-1")]))])
    index.rebuild(rows)
    now = T0
    assert len(index.pop_due(now, {0})) == 1
    index.rebuild(rows)
    assert len(index.pop_due(now, {0})) == 1
    index.clear()
    assert len(index) == 0
    assert index.pop_due(now, {0}) == []


def test_r3_1_the_timer_rebuilds_from_the_citizens_table_without_erased_or_broken_rows() -> None:
    # The worker's own rebuild (DeadlineTimer over CitizenRepository.headers): clear headers only,
    # an erased citizen contributes nothing, and one broken row does not stop the others.
    table = {
        b"a": _row(0, [Deadline("R3.1", date(2026, 2, 1), "case-1")]),
        # Never written with deadlines by the worker; if one were, the marker still wins.
        b"gone": _row(1, [Deadline("R3.1", date(2026, 1, 1), "case-3")], erased=True),
        b"broken": b"R2\x00\x00\x00\x05{nope",
        b"b": _row(1, [Deadline("R5.1", date(2026, 2, 2), "case-2")]),
    }
    index = DeadlineIndex()
    repo = CitizenRepository(table, sealer=None)  # type: ignore[arg-type] - headers never open a state
    timer = DeadlineTimer(index, repo, None, None, ManualClock(T0), "deadlines", "events", lambda: {0, 1})  # type: ignore[arg-type]
    timer.rebuild()
    assert timer.ready and len(index) == 2
    assert sorted((e.citizen_key, e.partition) for e in index.pop_due(T0, {0, 1})) == [("a", 0), ("b", 1)]


def test_r3_1_one_scan_of_the_table_rebuilds_the_index_and_shows_the_sagas_and_markers_to_the_others() -> None:
    # After a rebalance the saga watch is rebuilt from the same scan: every readable header with
    # a saga or the erasure marker (the watch drops erased ones itself), the rows with neither
    # read for their deadlines alone, the broken row logged and skipped.
    saga = _saga()
    table = {
        b"a": _row(0, [Deadline("R3.1", date(2026, 2, 1), "case-1")]),
        b"gone": _row(1, [], erased=True),
        b"dying": encode_row(RowHeader(1, (Deadline("R3.1", date(2026, 2, 1), "case-2"),), saga), b"\xd5\x01s"),
        b"broken": b"R2\x00\x00\x00\x05{nope",
    }
    seen: list[tuple[str, bool, bool]] = []
    index = DeadlineIndex()
    repo = CitizenRepository(table, sealer=None)  # type: ignore[arg-type] - headers never open a state
    timer = DeadlineTimer(index, repo, None, None, ManualClock(T0), "deadlines", "events", lambda: {0, 1})  # type: ignore[arg-type]
    timer.rebuild(also=lambda key, header: seen.append((key, header.erased, header.saga == saga)))
    assert sorted(seen) == [("dying", False, True), ("gone", True, False)]
    assert sorted(e.citizen_key for e in index.pop_due(T0, {0, 1})) == ["a", "dying"]


def test_r3_1_replace_pending_keeps_the_index_as_replace_citizen_does() -> None:
    """The step's shortcut (entries only for new deadlines, nothing when the set is unchanged)
    fires exactly what the full replacement fires, through rewrites, cancels and in-flight ids."""
    import random

    rng = random.Random(7)
    full, quick = DeadlineIndex(), DeadlineIndex()
    days = [date(2026, 3, 1) + timedelta(days=d) for d in range(6)]
    pending: dict[str, list[Deadline]] = {}
    fired_full: list[str] = []
    fired_quick: list[str] = []
    for step in range(400):
        citizen = f"c{rng.randrange(12)}"
        current = pending.setdefault(citizen, [])
        roll = rng.random()
        if roll < 0.4:
            current.append(Deadline(f"R{rng.randrange(3)}", rng.choice(days), f"case-{rng.randrange(3)}"))
        elif roll < 0.6 and current:
            current.pop(rng.randrange(len(current)))
        current[:] = list({d.deadline_id: d for d in current}.values())
        full.replace_citizen(citizen, entries_for(citizen, 1, current))
        quick.replace_pending(citizen, 1, current)
        if step % 25 == 0:
            now = passed_at(rng.choice(days)) + timedelta(minutes=1)
            fired_full += [f"{e.citizen_key}/{e.deadline_id}" for e in full.pop_due(now, {1})]
            fired_quick += [f"{e.citizen_key}/{e.deadline_id}" for e in quick.pop_due(now, {1})]
    assert fired_quick == fired_full and fired_full
    assert len(quick) == len(full)


class _PartitionedTable(dict[bytes, bytes]):
    """Rows that can be read a partition at a time, as the worker's RocksDB store: a whole read
    (``items``) would be the slow path a rebuild of some partitions must not take."""

    def __init__(self, by_partition: dict[int, dict[bytes, bytes]]) -> None:
        super().__init__({k: v for rows in by_partition.values() for k, v in rows.items()})
        self.by_partition = by_partition
        self.asked: list[list[int]] = []

    def items_in(self, partitions: Collection[int]) -> list[tuple[bytes, bytes]]:
        self.asked.append(sorted(partitions))
        return [kv for p in sorted(partitions) for kv in self.by_partition.get(p, {}).items()]

    def items(self) -> Iterator[tuple[bytes, bytes]]:  # type: ignore[override]
        raise AssertionError("a store that reads one partition alone is not read whole")


def test_r3_1_a_rebuild_reads_only_the_partitions_it_rebuilds_from_a_store_that_can() -> None:
    table = _PartitionedTable({0: {b"a": _row(0, [Deadline("R3.1", date(2026, 2, 1), "case-1")])},
                               1: {b"b": _row(1, [Deadline("R5.1", date(2026, 2, 2), "case-2")])}})
    repo = CitizenRepository(table, sealer=None)  # type: ignore[arg-type] - headers never open a state
    rows = list(repo.window_rows("2026-12-31", {1}))
    assert [(key, partition) for key, partition, *_ in rows] == [(b"b", 1)]
    assert table.asked == [[1]]


def test_r3_1_the_workers_store_is_read_a_partition_at_a_time() -> None:
    # Renaming a method of TableRows would silently make every rebuild read every row.
    from streams.faust_app import TableRows

    assert issubclass(TableRows, PartitionedRows)
