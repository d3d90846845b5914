"""A rebuild of the deadline index makes Deadlines only for what its window holds (issue 15:
a million rows of nine deadlines each), and never leaves out one the window should hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from processors.clock import passed_at
from processors.model import Deadline
from streams.citizen_rows import RowError, RowHeader, decode_header, encode_row, window_of
from streams.deadlines import DeadlineIndex, held_through
from tests.processors.test_deceased import _saga


def test_r3_1_held_through_never_cuts_a_deadline_that_fires_inside_the_window() -> None:
    """Every hour of two years, across both daylight-saving changes: a date whose deadline fires
    before the horizon is never after ``held_through``, and the cut is at most two days wide."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(0, 2 * 365 * 24, 1):
        horizon = (start + timedelta(hours=hour)).timestamp()
        cut = held_through(horizon)
        for back in range(-3, 3):
            due = (start + timedelta(hours=hour, days=back)).date()
            if passed_at(due).timestamp() < horizon:
                assert due.isoformat() <= cut, (hour, due, cut)
        assert date.fromisoformat(cut) - datetime.fromtimestamp(horizon, UTC).date() <= timedelta(days=1)


def test_an_endless_window_holds_every_date() -> None:
    assert held_through(float("inf")) == "9999-12-31"


def test_r3_1_a_header_cut_to_the_window_counts_the_rest_and_keeps_the_saga_and_marker() -> None:
    pending = tuple(Deadline(f"R{i}", date(2026, 6, 1) + timedelta(days=30 * i), "case-1") for i in range(9))
    row = encode_row(RowHeader(3, pending, None, erased=False), b"sealed")
    partition, held, left_out, header = window_of(row, "2026-07-01")
    assert held == pending[:2] and left_out == 7 and partition == 3
    assert header is None  # nothing but deadlines to rebuild from this row
    _, whole, none_left, _ = window_of(row, "9999-12-31")
    assert whole == decode_header(row).pending and none_left == 0
    # A row with a saga, or the erasure marker, comes with its whole header, cut to the window.
    for kept in (RowHeader(3, pending, _saga()), RowHeader(3, (), erased=True)):
        _, held, left_out, header = window_of(encode_row(kept, b""), "2026-07-01")
        assert header is not None and header.saga == kept.saga and header.erased == kept.erased
        assert held == header.pending == kept.pending[:2] and left_out == len(kept.pending[2:])


def test_a_header_with_a_due_date_that_is_no_string_is_a_broken_row() -> None:
    row = encode_row(RowHeader(0, (Deadline("R3.1", date(2026, 6, 1), "c"),)), b"")
    broken = row.replace(b'"2026-06-01"', b"20260601")
    with pytest.raises(RowError):
        window_of(broken, "2026-07-01")


def test_r3_1_a_rebuild_from_cut_headers_holds_and_counts_what_a_whole_rebuild_does() -> None:
    now = datetime(2026, 6, 1, 10, tzinfo=UTC)
    horizon = (now + timedelta(days=2)).timestamp()
    rows = [(f"c{i}", encode_row(RowHeader(i % 4, tuple(
        Deadline(f"R{j}", now.date() + timedelta(days=(i + 5 * j) % 40 - 1), f"case-{i}") for j in range(9))), b""))
        for i in range(300)]
    whole, cut = DeadlineIndex(), DeadlineIndex()
    whole.rebuild(((k, decode_header(r).partition, decode_header(r).pending, 0) for k, r in rows), horizon)
    cut.rebuild(((k, partition, held, n) for k, (partition, held, n, _) in
                 ((k, window_of(r, held_through(horizon))) for k, r in rows)), horizon)
    assert len(cut) == len(whole) > 0 and cut.beyond == whole.beyond > 0
    at = datetime.fromtimestamp(horizon, UTC)
    assert ([(e.citizen_key, e.deadline_id) for e in cut.pop_due(at, {0, 1, 2, 3})]
            == [(e.citizen_key, e.deadline_id) for e in whole.pop_due(at, {0, 1, 2, 3})])
