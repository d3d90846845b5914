"""One entry point for the shell: ``process(state, event, now) -> Outcome``.

It picks the handler for the event (or, for a fired deadline, for its rule), then routes the
decision's notices to recipients and remembers who has been told about the citizen (R7
needs that list). Everything here is pure; ``streams`` does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

from processors import absence, deceased, lifecycle, registration, retention
from processors.events import DeadlineDue, Event
from processors.frozen import quick_init, replace
from processors.model import CitizenState, Decision, Notice, Output, Rejected, deterministic_id
from processors.reference import E301_CITIZEN_DECEASED
from processors.routing import recipients

__all__ = ["Delivery", "Outcome", "UnhandledEvent", "process", "process_erased", "sealed_fields"]

Handler = Callable[[CitizenState, Event, datetime], Decision]
K = TypeVar("K")


class UnhandledEvent(LookupError):
    """No handler for this event type or deadline rule: a wiring bug, not bad input."""


def _merge(what: str, *tables: Mapping[K, Handler]) -> Mapping[K, Handler]:
    """One table from the modules' tables; a key claimed twice is a wiring bug, caught at import."""
    merged: dict[K, Handler] = {}
    for table in tables:
        for key, handler in table.items():
            if key in merged:
                raise ValueError(f"two handlers for {what} {getattr(key, '__name__', key)}")
            merged[key] = handler
    return MappingProxyType(merged)


HANDLERS = _merge("event", lifecycle.HANDLERS, absence.HANDLERS, registration.HANDLERS, deceased.HANDLERS,
                  retention.HANDLERS)
DEADLINE_HANDLERS = _merge("deadline rule", lifecycle.DEADLINE_HANDLERS, retention.DEADLINE_HANDLERS)


@quick_init
@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to one subscriber; ``notification_id`` is the same on every replay."""

    notification_id: str
    recipient: str
    notice: Notice


def sealed_fields(delivery: Delivery, state: CitizenState) -> dict[str, str]:
    """What the shell seals into the notification's personal part for its recipient: the CPR it
    needs to act, and the notice's own personal fields. Empty: the notification carries none."""
    fields = {"cpr": state.personal.cpr} if state.personal.cpr is not None else {}
    return {**fields, **delivery.notice.personal}


@quick_init
@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    deliveries: tuple[Delivery, ...]

    @property
    def state(self) -> CitizenState:
        return self.decision.state

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.decision.outputs


def handler_for(event: Event) -> Handler:
    if isinstance(event, DeadlineDue):
        prefix = event.rule.split(":", 1)[0]
        try:
            return DEADLINE_HANDLERS[prefix]
        except KeyError:
            raise UnhandledEvent(f"no handler for deadline rule {event.rule}") from None
    try:
        return HANDLERS[type(event)]
    except KeyError:
        raise UnhandledEvent(f"no handler for {type(event).__name__}") from None


def process(state: CitizenState, event: Event, now: datetime) -> Outcome:
    decision = handler_for(event)(state, event, now)
    deliveries: list[Delivery] = []
    for output in decision.outputs:
        if isinstance(output, Notice):
            for recipient in recipients(output, decision.state):
                deliveries.append(Delivery(deterministic_id(output.notice_id, recipient), recipient, output))
    if deliveries:
        told = decision.state.notified | {d.recipient for d in deliveries}
        if told != decision.state.notified:
            decision = replace(decision, state=replace(decision.state, notified=frozenset(told)))
    return Outcome(decision, tuple(deliveries))


def process_erased(citizen_key: str, event: Event, now: datetime) -> Outcome:
    """R7.3 after the deletion: the citizen stays deceased, though nothing else of them is kept.

    Every new fact about them is refused (no state, no key, no notification); a deadline that
    fires late for them does nothing."""
    state = CitizenState(citizen_key=citizen_key)
    if isinstance(event, DeadlineDue):
        return Outcome(Decision(state), ())
    refusal = Rejected(event.event_id, E301_CITIZEN_DECEASED,
                       "the citizen has died and their data has been deleted; no new facts are accepted (R7.3)")
    return Outcome(Decision(state, outputs=(refusal,)), ())
