"""Small state and output helpers shared by the lifecycle handlers (R1-R5)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from processors.events import Event
from processors.frozen import replace
from processors.model import (
    CaseState,
    CitizenState,
    Deadline,
    Decision,
    Notice,
    Output,
    Rejected,
    deterministic_id,
    iso_date,
)

__all__ = [
    "Handler",
    "consume_deadline",
    "deadline_notice",
    "iso",
    "pending_ids",
    "reject",
    "reschedule",
    "typed",
    "with_case",
]

Handler = Callable[[CitizenState, Event, datetime], Decision]
E = TypeVar("E", bound=Event)


def typed(event_type: type[E], handler: Callable[[CitizenState, E, datetime], Decision]) -> Handler:
    """Adapt a handler for one event type to the generic ``Handler`` signature."""

    def handle(state: CitizenState, event: Event, now: datetime) -> Decision:
        if not isinstance(event, event_type):
            raise TypeError(f"{handler.__name__} handles {event_type.__name__}, not {type(event).__name__}")
        return handler(state, event, now)

    handle.__name__ = handler.__name__
    handle.__doc__ = handler.__doc__
    return handle


def with_case(state: CitizenState, case: CaseState, **changes: Any) -> CitizenState:
    """``state`` with ``case`` stored under its id, and ``changes`` to its other fields in the
    same replace."""
    return replace(state, cases=MappingProxyType({**state.cases, case.case_id: case}), **changes)


def pending_ids(state: CitizenState, case_id: str, rule: str) -> tuple[str, ...]:
    """Ids of the pending deadlines of ``case_id`` whose rule is exactly ``rule``."""
    return tuple(sorted(i for i, d in state.pending.items() if d.case_id == case_id and d.rule == rule))


def reschedule(
    state: CitizenState, cancel: Iterable[str] = (), add: Iterable[Deadline] = ()
) -> tuple[CitizenState, tuple[str, ...], tuple[Deadline, ...]]:
    """Cancel pending deadlines and set new ones; returns the new state and what changed.

    Only ids that were pending are reported cancelled, and an id both cancelled and re-added
    is left alone, so replays produce no deadline churn.
    """
    added = {d.deadline_id: d for d in add}
    if not state.pending:  # a new citizen's or case's first: nothing to cancel, every one is new
        if not added:
            return state, (), ()
        return replace(state, pending=MappingProxyType(added)), (), tuple(added.values())
    cancelled = tuple(sorted({i for i in cancel if i in state.pending and i not in added}))
    new_ones = tuple(d for i, d in added.items() if state.pending.get(i) != d)
    if not cancelled and not new_ones:
        return state, (), ()
    pending: dict[str, Deadline] = {i: d for i, d in state.pending.items() if i not in cancelled}
    pending.update(added)
    return replace(state, pending=MappingProxyType(pending)), cancelled, new_ones


def consume_deadline(state: CitizenState, deadline_id: str) -> CitizenState:
    """The deadline leaves ``pending`` and joins ``fired``, so firing it again does nothing."""
    pending = {i: d for i, d in state.pending.items() if i != deadline_id}
    return replace(state, pending=MappingProxyType(pending), fired=state.fired | {deadline_id})


def deadline_notice(
    state: CitizenState,
    *,
    kind: str,
    anchor: Deadline,
    cause: Event,
    municipality: str,
    details: Mapping[str, str],
) -> Notice:
    """A notice whose id derives from the citizen key and the deadline id it belongs to (not
    from the cause's event id), so the same fact yields the same id on every replay."""
    return Notice(
        notice_id=deterministic_id(state.citizen_key, anchor.deadline_id, kind),
        kind=kind,
        cause_event_id=cause.event_id,
        cause_type=type(cause).__name__,
        details=MappingProxyType({"rule": anchor.rule, **details}),
        municipality=municipality,
    )


def reject(state: CitizenState, event: Event, code: str, reason: str) -> Decision:
    """State unchanged; the event goes to the dead-letter topic with ``code`` and ``reason``."""
    outputs: tuple[Output, ...] = (Rejected(cause_event_id=event.event_id, code=code, reason=reason),)
    return Decision(state=state, outputs=outputs)


def iso(d: date) -> str:
    """Dates in notice details are ISO strings."""
    return iso_date(d)
