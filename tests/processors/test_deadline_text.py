"""A deadline's due date as text (``Deadline.due_iso``, ``processors.model.iso_date``) is what
``date.isoformat`` gives, wherever it is written (the row's header, the state, the index), and
``reschedule``'s shortcut for a citizen with nothing pending decides what its general path does."""

from __future__ import annotations

from datetime import date, timedelta
from types import MappingProxyType

from processors import model
from processors.frozen import replace
from processors.lifecycle_common import reschedule
from processors.model import CitizenState, Deadline, iso_date
from processors.state_codec import state_from_dict, state_to_dict


def test_due_iso_is_the_iso_date_and_follows_a_replace() -> None:
    deadline = Deadline("R3.1", date(2027, 3, 9), "case-1")
    assert deadline.due_iso == "2027-03-09" and deadline.deadline_id == "R3.1|case-1|2027-03-09"
    moved = replace(deadline, due_date=date(2028, 1, 1))
    assert moved.due_iso == "2028-01-01" and moved.deadline_id.endswith("|2028-01-01")
    assert deadline == Deadline("R3.1", date(2027, 3, 9), "case-1")  # the text takes no part in equality


def test_iso_date_gives_isoformat_for_every_date_and_holds_a_bounded_number() -> None:
    start = date(1999, 12, 25)
    days = [start + timedelta(days=n) for n in range(model._ISO_DATES_HELD + 500)]
    assert [iso_date(day) for day in days] == [day.isoformat() for day in days]
    assert len(model._ISO_DATES) <= model._ISO_DATES_HELD
    assert iso_date(date(2026, 5, 1)) is iso_date(date(2026, 5, 1))  # one string per date held


def test_the_state_round_trips_with_the_dates_as_text() -> None:
    pending = {d.deadline_id: d for d in (Deadline("R3.1", date(2027, 1, 2), "c"), Deadline("R8.1", date(2029, 6, 30)))}
    state = CitizenState(citizen_key="k" * 64, pending=MappingProxyType(pending))
    data = state_to_dict(state)
    assert data["pending"] == {i: {"rule": d.rule, "due_date": d.due_date.isoformat(), "case_id": d.case_id}
                               for i, d in pending.items()}
    assert state_from_dict(data) == state


def _general(state: CitizenState, cancel: tuple[str, ...], add: list[Deadline]
             ) -> tuple[CitizenState, tuple[str, ...], tuple[Deadline, ...]]:
    """``reschedule`` as it was written before its shortcut (the general path)."""
    added = {d.deadline_id: d for d in add}
    cancelled = tuple(sorted({i for i in cancel if i in state.pending and i not in added}))
    new_ones = tuple(d for i, d in added.items() if state.pending.get(i) != d)
    if not cancelled and not new_ones:
        return state, (), ()
    kept = {i: d for i, d in state.pending.items() if i not in cancelled}
    kept.update(added)
    return replace(state, pending=MappingProxyType(kept)), cancelled, new_ones


def test_reschedule_with_nothing_pending_decides_as_the_general_path() -> None:
    empty = CitizenState(citizen_key="k" * 64)
    one = Deadline("R3.1", date(2027, 1, 2), "c")
    later = Deadline("R4.1", date(2027, 3, 1), "c")
    cases = [((), []), (("R3.1|c|2027-01-02",), []), ((), [one]), ((), [one, one, later]), (("gone",), [one])]
    for cancel, add in cases:
        assert reschedule(empty, cancel, add) == _general(empty, cancel, add)
    assert reschedule(empty)[0] is empty  # nothing to change: the same state
