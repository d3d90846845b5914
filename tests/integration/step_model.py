"""What the worker must send for a set of events, computed from the pure core alone.

The crash tests compare what reached the topics with this, by id: the processors decide the
outputs and their ids, and the deadline timer fires every pending deadline whose day has
passed, so running ``process`` over each citizen's events and its due deadlines, in the same
way, yields every notification and data-area-closed id the worker owes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from processors.clock import passed_at
from processors.events import CaseCreated, DeadlineDue, Event
from processors.model import CitizenState, DataAreaClosedOut, deterministic_id
from processors.pipeline import process
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr

MUNICIPALITIES = ("851", "147")


@dataclass
class Owed:
    notifications: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)


def key_of(cpr: str) -> str:
    return citizen_key(DEV_PSEUDONYM_KEY, cpr)


def passed_cases(unique: str, n: int, today: date, occurred_at: datetime) -> list[CaseCreated]:
    """``n`` new cases whose handover date passed ten days ago (every handover deadline is due)."""
    rng = random.Random(unique)
    cases = []
    for i in range(n):
        early = today - timedelta(days=12) if i % 3 == 1 else None
        cases.append(CaseCreated(
            event_id=deterministic_id("crash-test", unique, str(i)), occurred_at=occurred_at, producer="tests",
            cpr=synthetic_cpr(rng), case_id=f"case-{unique}-{i}", receiving_municipality=MUNICIPALITIES[i % 2],
            jobcenter_municipality=MUNICIPALITIES[(i // 2) % 2], contact_group=18,
            handover_date=today - timedelta(days=10), cv_number="CV-1",
            early_cv_takeover_date=early, early_contract_takeover_date=early))
    return cases


def owed(events: Iterable[Event], now: datetime) -> Owed:
    """Every output id the worker owes for ``events`` (one citizen each, in order) at ``now``."""
    out = Owed()
    for event in events:
        key = key_of(getattr(event, "cpr"))  # noqa: B009 - every ingress event here has one
        state = CitizenState(citizen_key=key)
        queue: list[Event] = [event]
        sent: set[str] = set()
        while queue:
            outcome = process(state, queue.pop(0), now)
            state = outcome.state
            for delivery in outcome.deliveries:
                out.notifications.add(delivery.notification_id)
                out.recipients.add(delivery.recipient)
            out.closed |= {o.output_id for o in outcome.outputs if isinstance(o, DataAreaClosedOut)}
            if not queue:
                for d in sorted(state.pending.values(), key=lambda d: (d.due_date, d.deadline_id)):
                    if passed_at(d.due_date) <= now and d.deadline_id not in sent:
                        sent.add(d.deadline_id)
                        queue.append(DeadlineDue(
                            event_id=deterministic_id("deadline-due", key, d.deadline_id), occurred_at=now,
                            producer="model", deadline_id=d.deadline_id, rule=d.rule, due_date=d.due_date,
                            case_id=d.case_id))
    return out
