"""A fake clock and an in-memory deadline service for the lifecycle tests.

``Run`` feeds events to ``processors.lifecycle`` and, when the clock advances, fires every
pending deadline whose date has passed (``clock.passed_at``) in time order, the way the real
deadline service sends ``DeadlineDue`` to the citizen's partition. Each fired ``DeadlineDue``
gets a fresh random event id, so tests prove output ids do not depend on it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from processors.clock import passed_at
from processors.events import CaseCreated, DeadlineDue, Event
from processors.lifecycle import DEADLINE_HANDLERS, HANDLERS
from processors.model import CitizenState, Decision, Output

CPR = "0101901234"  # synthetic
CITIZEN_KEY = "ck-test-1"
CASE_ID = "case-1"
RECEIVING = "101"
JOBCENTER = "147"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def case_created(**overrides: Any) -> CaseCreated:
    fields: dict[str, Any] = {
        "event_id": new_id(),
        "occurred_at": utc(2026, 3, 1, 9),
        "producer": "test",
        "cpr": CPR,
        "case_id": CASE_ID,
        "receiving_municipality": RECEIVING,
        "jobcenter_municipality": JOBCENTER,
        "contact_group": 18,
        "handover_date": date(2026, 3, 28),
        "cv_number": "CV-1",
    }
    fields.update(overrides)
    return CaseCreated(**fields)


def common(**overrides: Any) -> dict[str, Any]:
    """Envelope fields plus CPR and case id for the other lifecycle events."""
    base: dict[str, Any] = {
        "event_id": new_id(), "occurred_at": utc(2026, 3, 1, 9), "producer": "test", "cpr": CPR, "case_id": CASE_ID,
    }
    base.update(overrides)
    return base


def handle(state: CitizenState, event: Event, now: datetime) -> Decision:
    if isinstance(event, DeadlineDue):
        return DEADLINE_HANDLERS[event.rule.split(":", 1)[0]](state, event, now)
    return HANDLERS[type(event)](state, event, now)


def due_event(state: CitizenState, deadline_id: str) -> DeadlineDue:
    d = state.pending[deadline_id]
    return DeadlineDue(event_id=new_id(), occurred_at=passed_at(d.due_date), producer="deadline-service",
                       deadline_id=deadline_id, rule=d.rule, due_date=d.due_date, case_id=d.case_id)


@dataclass
class Run:
    """A citizen's state, the fake clock, and everything that came out."""

    state: CitizenState = field(default_factory=lambda: CitizenState(citizen_key=CITIZEN_KEY))
    now: datetime = field(default_factory=lambda: utc(2026, 3, 1, 9))
    outputs: list[Output] = field(default_factory=list)
    fired: list[DeadlineDue] = field(default_factory=list)

    def send(self, event: Event) -> Decision:
        decision = handle(self.state, event, self.now)
        check_decision(self.state, decision)
        self.state = decision.state
        self.outputs.extend(decision.outputs)
        return decision

    def advance(self, to: datetime) -> list[Output]:
        """Move the clock to ``to`` and fire every deadline passed by then, earliest first."""
        before = len(self.outputs)
        while True:
            due = sorted((at, i) for i, d in self.state.pending.items() if (at := passed_at(d.due_date)) <= to)
            if not due:
                break
            at, deadline_id = due[0]
            self.now = at
            event = due_event(self.state, deadline_id)
            self.fired.append(event)
            self.send(event)
        self.now = to
        return self.outputs[before:]

    def kinds(self) -> list[str]:
        return [getattr(o, "kind", type(o).__name__) for o in self.outputs]


def check_decision(old: CitizenState, decision: Decision) -> None:
    """Invariants every lifecycle decision keeps: set deadlines are pending, cancelled ones gone."""
    new = decision.state
    for d in decision.set_deadlines:
        assert new.pending.get(d.deadline_id) == d, d
        assert d.deadline_id not in old.pending or old.pending[d.deadline_id] != d, d
    for i in decision.cancel_deadlines:
        assert i in old.pending and i not in new.pending, i
    assert new.citizen_key == old.citizen_key
