"""Rejection reasons name fields and rules, never a value an event carried (issue 13, point 2).

Every reason the pure core produces (the processors' ``Rejected`` and ``FetchRefused``, the
stateless ``validate`` and the door's ``admit``) goes into ``dlq.error.message``, the log or a
subscriber's record, which outlive the citizen. The events here carry distinctive markers in
every field; a reason that repeats any of them, or any value from the citizen's earlier events
(a case's dates, the date of death), fails the test. ``without_values`` (the dead-letter mask)
is deliberately not applied: it is the second line, this is the first.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from enum import Enum

from processors.events import (
    AbsenceDeleted,
    AbsenceRegistered,
    AbsenceType,
    CaseCreated,
    CitizenDeceased,
    ContractConcluded,
    DataArea,
    DataAreaFetchRequested,
    Event,
    FollowUpHeld,
    HandoverDatePassed,
    JobseekerDeregistered,
    JobseekerRegistered,
    ReferralRecordEnded,
    ScreeningResultMade,
    topic_for,
)
from processors.model import CitizenState, FetchRefused, Rejected
from processors.pipeline import process, process_erased
from processors.validation import validate
from schemas.codec import Codec
from streams.ingest import Refused, admit
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr

CPR = synthetic_cpr(random.Random("reasons-carry-no-values"))
NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
WHEN = datetime(2026, 5, 19, 7, 41, 23, tzinfo=UTC)  # occurred_at of every event
KEY = "ck-reasons"


def _marker(name: str) -> str:
    return f"Mk{name.title().replace('_', '')}{uuid.uuid4().hex[:6]}"


def _envelope(**fields: object) -> dict[str, object]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": WHEN, "producer": _marker("producer"), "cpr": CPR, **fields}


CASE_ID = _marker("case")
HANDOVER = date(2026, 4, 14)


def _case(**overrides: object) -> CaseCreated:
    fields = _envelope(case_id=CASE_ID, receiving_municipality="851", jobcenter_municipality="851",
                       contact_group=18, handover_date=HANDOVER, early_cv_takeover_date=date(2026, 4, 9),
                       early_contract_takeover_date=date(2026, 4, 10), cv_update_deadline=date(2026, 5, 27),
                       cv_number=_marker("cv"), case_type=_marker("case_type"))
    fields.update(overrides)
    return CaseCreated(**fields)  # type: ignore[arg-type]


def _absence(absence_id: str, kind: AbsenceType) -> AbsenceRegistered:
    return AbsenceRegistered(**_envelope(absence_id=absence_id, absence_type=kind, start_date=date(2026, 2, 23),
                                         end_date=date(2026, 6, 19), registered_by=_marker("registered_by")))


def _deletion(absence_id: str, kind: AbsenceType, by: str) -> AbsenceDeleted:
    return AbsenceDeleted(**_envelope(absence_id=absence_id, absence_type=kind, start_date=date(2026, 2, 23),
                                      deleted_by=by, akasse=_marker("akasse"), municipality="851"))


def _every_type() -> list[Event]:
    """One event of every type the processors handle, all about the marked case."""
    return [
        _case(case_id=_marker("case")),
        HandoverDatePassed(**_envelope(case_id=CASE_ID, handover_date=date(2026, 4, 16), receiving_municipality="851")),
        _absence(_marker("absence"), AbsenceType.SICKNESS),
        _deletion(_marker("absence"), AbsenceType.SICKNESS, "jobcenter:851"),
        JobseekerRegistered(**_envelope(name=_marker("name"), registration_date=date(2026, 3, 3), municipality="851",
                                        benefit_category=_marker("benefit"), unemployment_degree=0.73,
                                        job_titles=(_marker("title"),), akasse=_marker("akasse"))),
        JobseekerDeregistered(**_envelope(deregistration_date=date(2026, 3, 4), reason=_marker("reason"))),
        ContractConcluded(**_envelope(case_id=CASE_ID, concluded_date=date(2026, 4, 21),
                                      employment_goal=_marker("goal"))),
        FollowUpHeld(**_envelope(case_id=CASE_ID, held_date=date(2026, 4, 22))),
        DataAreaFetchRequested(**_envelope(case_id=CASE_ID, data_area=DataArea.ATTACHMENTS,
                                           requested_by=_marker("requested_by"))),
        ReferralRecordEnded(**_envelope(record_id=_marker("record"), ended_date=date(2026, 3, 5))),
        ScreeningResultMade(**_envelope(result_id=_marker("result"), made_date=date(2026, 3, 6), score=48213)),
        CitizenDeceased(**_envelope(date_of_death=date(2026, 3, 7))),
    ]


def _values(value: object) -> Iterator[str]:
    """The text forms a field's value could take in a message. Enum symbols are the schema's own
    words (a reason may name the rule for ``PARENTAL_LEAVE``), not what the publisher wrote."""
    if isinstance(value, Enum | bool) or value is None:
        return
    if isinstance(value, datetime):
        yield value.isoformat()
        yield value.date().isoformat()
    elif isinstance(value, date):
        yield value.isoformat()
    elif isinstance(value, str):
        if len(value) >= 3:  # a blank or two-letter value cannot be told from the prose
            yield value
    elif isinstance(value, int | float):
        if abs(value) >= 1000 or isinstance(value, float):
            yield str(value)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _values(item)


def carried(events: Iterable[Event]) -> set[str]:
    return {text for event in events for f in dataclasses.fields(event) for text in _values(getattr(event, f.name))}


def _leaks(reason: str, values: set[str]) -> list[str]:
    return sorted(v for v in values if v in reason)


class Citizen:
    """Feeds one citizen's events through ``process`` and keeps every reason and every value fed."""

    def __init__(self) -> None:
        self.state = CitizenState(citizen_key=KEY)
        self.fed: list[Event] = []
        self.reasons: list[tuple[str, str]] = []  # (code, reason)

    def send(self, event: Event) -> None:
        self.fed.append(event)
        outcome = process(self.state, event, NOW)
        self.state = outcome.state
        for output in outcome.outputs:
            if isinstance(output, Rejected):
                self.reasons.append((output.code, output.reason))
            elif isinstance(output, FetchRefused):
                self.reasons.append((output.reason.split(":", 1)[0], output.reason))


def test_no_rejection_or_refusal_reason_of_the_processors_repeats_a_value_any_event_carried() -> None:
    alive = Citizen()
    alive.send(_case())
    alive.send(_case(handover_date=date(2026, 4, 15)))  # E306: same case_id, other facts
    for event in _every_type()[1:-1]:  # E302: none of them names a known case
        if getattr(event, "case_id", None) == CASE_ID:
            alive.send(dataclasses.replace(event, case_id=_marker("unknown_case")))  # type: ignore[type-var]
    alive.send(ContractConcluded(**_envelope(case_id=CASE_ID, concluded_date=date(2026, 4, 21))))  # E303
    alive.send(DataAreaFetchRequested(**_envelope(case_id=CASE_ID, data_area=DataArea.CV,
                                                  requested_by=_marker("requested_by"))))  # E305
    parental = _marker("absence")
    alive.send(_absence(parental, AbsenceType.PARENTAL_LEAVE))
    alive.send(_deletion(_marker("absence"), AbsenceType.SICKNESS, "jobcenter:851"))  # E304: unknown absence
    alive.send(_deletion(parental, AbsenceType.PARENTAL_LEAVE, _marker("deleter")))  # E304: not a role we know
    alive.send(_deletion(parental, AbsenceType.PARENTAL_LEAVE, "akasse:55"))  # E304: begun Barsel

    dead = Citizen()
    dead.send(_case())
    dead.send(CitizenDeceased(**_envelope(date_of_death=date(2026, 5, 11))))
    for event in _every_type()[:-1]:
        dead.send(event)  # E301 for each: the citizen has died

    reasons = alive.reasons + dead.reasons
    codes = {code.split(" ", 1)[0] for code, _ in reasons}
    # Not vacuous: every state-needing refusal the processors can make was produced.
    assert {"E301", "E302", "E303", "E304", "E305", "E306"} <= codes, codes
    assert sum(code.startswith("E304") for code, _ in alive.reasons) == 3
    assert sum(code.startswith("E301") for code, _ in dead.reasons) >= 9
    for citizen in (alive, dead):
        values = carried(citizen.fed)
        assert CPR in values and CASE_ID in values and "2026-04-14" in values
        for code, reason in citizen.reasons:
            assert not _leaks(reason, values), (code, reason, _leaks(reason, values))


def test_no_reason_for_a_deleted_citizen_repeats_a_value_the_event_carried() -> None:
    events = _every_type()
    values = carried(events)
    reasons = [o.reason for e in events for o in process_erased(KEY, e, NOW).outputs if isinstance(o, Rejected)]
    assert len(reasons) == len(events)
    assert all(not _leaks(reason, values) for reason in reasons), [r for r in reasons if _leaks(r, values)]


def _invalid_events() -> list[Event]:
    """Events that break stateless rules while carrying markers (and values that break them)."""
    too_long = _marker("long") * 200
    return [
        _case(cpr="Mk9988776", receiving_municipality="Mk7", jobcenter_municipality="Mk8", contact_group=4711,
              early_cv_takeover_date=date(2026, 4, 29), cv_update_deadline=date(2026, 8, 30)),
        _case(cpr="3102901234"),  # no 31 February
        _case(case_id=too_long, cv_number=too_long),
        _case(handover_date=date(2999, 1, 1), occurred_at=datetime(1971, 3, 3, 3, 3, 3, tzinfo=UTC)),
        AbsenceRegistered(**_envelope(absence_id=_marker("absence"), absence_type=AbsenceType.EXEMPT_MINK_EDUCATION,
                                      start_date=date(2021, 2, 11), end_date=date(2021, 1, 13))),
        AbsenceRegistered(**_envelope(absence_id=_marker("absence"), absence_type=AbsenceType.LESS_INTENSIVE_EFFORT,
                                      start_date=date(2026, 2, 11), education_benefit_recipient=True)),
        AbsenceDeleted(**_envelope(
            absence_id=_marker("absence"), absence_type=AbsenceType.SICKNESS, start_date=date(2026, 2, 11),
            end_date=date(2026, 1, 17), municipality="Mk99", deleted_by=_marker("deleter"))),
        JobseekerRegistered(**_envelope(cpr=synthetic_cpr(random.Random("minor"), date(2020, 1, 1), date(2020, 6, 1)),
                                        name=too_long, registration_date=date(2026, 3, 3), municipality="Mk5",
                                        benefit_category=_marker("benefit"), unemployment_degree=0.73,
                                        job_titles=tuple(_marker("title") for _ in range(300)))),
        dataclasses.replace(_case(), event_id=_marker("event_id")),
    ]


def test_no_validation_message_repeats_a_value_the_event_carried() -> None:
    found = 0
    for event in _invalid_events():
        values = carried([event])
        violations = validate(event, NOW.date())
        assert violations, event
        found += len(violations)
        for v in violations:
            assert not _leaks(v.message, values), (v.code, v.message, _leaks(v.message, values))
    assert found >= 15


def test_no_door_refusal_repeats_a_value_the_event_carried() -> None:
    """What the door writes into ``dlq.error.message``: validation as the door words it, and E108."""
    codec = Codec.default()
    cases = [(event, topic_for(type(event))) for event in _invalid_events()]
    cases += [(event, "dfdg.absence-deleted") for event in _every_type() if not isinstance(event, AbsenceDeleted)]
    codes = set()
    for event, topic in cases:
        result = admit(codec.encode(event), codec, DEV_PSEUDONYM_KEY, NOW, topic)
        assert isinstance(result, Refused), (type(event).__name__, topic)
        codes.add(result.code.split(" ", 1)[0])
        values = carried([event])
        assert not _leaks(result.message, values), (result.code, result.message, _leaks(result.message, values))
    assert "E108" in codes and len(codes) >= 5, codes
