from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from processors.absence import HANDLERS, NON_DELETABLE_TYPES
from processors.events import AbsenceDeleted, AbsenceRegistered, AbsenceType, Event
from processors.model import CitizenState, Decision, Notice, Rejected
from processors.routing import recipients

# 2024-05-10 08:00 local time (06:00 UTC): "today" is 2024-05-10 in Copenhagen.
NOW = datetime(2024, 5, 10, 6, 0, tzinfo=UTC)
TODAY = date(2024, 5, 10)
CITIZEN = CitizenState(citizen_key="ck-1", akasse="5", municipality="101")


def handle(state: CitizenState, event: Event, now: datetime = NOW) -> Decision:
    return HANDLERS[type(event)](state, event, now)


def registered(absence_type: AbsenceType = AbsenceType.HOLIDAY, start: date = TODAY, absence_id: str = "a1",
               end: date | None = None) -> AbsenceRegistered:
    return AbsenceRegistered(event_id=f"reg-{absence_id}", occurred_at=NOW, producer="t", cpr="0101901234",
                             absence_id=absence_id, absence_type=absence_type, start_date=start, end_date=end)


def deleted(absence_type: AbsenceType = AbsenceType.HOLIDAY, start: date = TODAY, absence_id: str = "a1",
            by: str = "jobcenter:101", event_id: str = "del-1", **kw: str) -> AbsenceDeleted:
    return AbsenceDeleted(event_id=event_id, occurred_at=NOW, producer="t", cpr="0101901234", absence_id=absence_id,
                          absence_type=absence_type, start_date=start, deleted_by=by, **kw)


def with_absence(state: CitizenState, event: AbsenceRegistered) -> CitizenState:
    return handle(state, event).state


def test_r6_1_absence_registered_is_kept_with_type_start_and_optional_end() -> None:
    state = with_absence(CITIZEN, registered(AbsenceType.PARENTAL_LEAVE, date(2024, 1, 1), end=date(2024, 6, 1)))
    state = with_absence(state, registered(AbsenceType.SICKNESS, date(2024, 5, 1), absence_id="a2"))
    assert state.absences["a1"].absence_type is AbsenceType.PARENTAL_LEAVE
    assert state.absences["a1"].end_date == date(2024, 6, 1)
    assert state.absences["a2"].end_date is None
    assert set(state.absences) == {"a1", "a2"}


def test_r6_1_reregistration_with_same_id_corrects_the_absence() -> None:
    state = with_absence(CITIZEN, registered(start=date(2024, 5, 1)))
    state = with_absence(state, registered(start=date(2024, 5, 3)))
    assert state.absences["a1"].start_date == date(2024, 5, 3)


def test_r6_2_historical_and_current_deletion_allowed() -> None:
    for start in (date(2023, 1, 1), date(2024, 5, 9), TODAY, date(2024, 12, 1)):  # past, yesterday, today, future
        state = with_absence(CITIZEN, registered(AbsenceType.SICKNESS, start))
        decision = handle(state, deleted(AbsenceType.SICKNESS, start))
        assert "a1" not in decision.state.absences, start
        assert [type(o) for o in decision.outputs] == [Notice], start


def test_r6_2_today_follows_copenhagen_not_utc() -> None:
    state = with_absence(CITIZEN, registered(AbsenceType.PARENTAL_LEAVE, date(2024, 5, 10)))
    # 21:30 UTC on 9 May is 23:30 on 9 May in Copenhagen: the Barsel starting 10 May is still future.
    evening = datetime(2024, 5, 9, 21, 30, tzinfo=UTC)
    assert isinstance(handle(state, deleted(AbsenceType.PARENTAL_LEAVE, date(2024, 5, 10)), evening).outputs[0], Notice)
    # 23:30 UTC on 9 May is already 10 May in Copenhagen: the Barsel is current, so it stays (R6.2).
    late = datetime(2024, 5, 9, 23, 30, tzinfo=UTC)
    refused = handle(state, deleted(AbsenceType.PARENTAL_LEAVE, date(2024, 5, 10)), late)
    assert isinstance(refused.outputs[0], Rejected) and "a1" in refused.state.absences
    # ...and on 11 May local time it has started, so a non-deletable type is refused.
    next_day = datetime(2024, 5, 10, 22, 30, tzinfo=UTC)
    assert isinstance(handle(state, deleted(), next_day).outputs[0], Rejected)


def test_r6_2_absence_starting_today_is_current_and_keeps_the_exception() -> None:
    for absence_type in NON_DELETABLE_TYPES:
        state = with_absence(CITIZEN, registered(absence_type, TODAY))
        decision = handle(state, deleted(absence_type, TODAY))
        [rejected] = decision.outputs
        assert isinstance(rejected, Rejected) and rejected.code == "E304 absence-not-deletable"
        assert "current or historical" in rejected.reason
        assert decision.state.absences["a1"].start_date == TODAY
    # A deletable type starting today goes, as any current absence does.
    state = with_absence(CITIZEN, registered(AbsenceType.SICKNESS, TODAY))
    assert "a1" not in handle(state, deleted(AbsenceType.SICKNESS, TODAY)).state.absences


def test_r6_2_non_deletable_type_refused() -> None:
    assert AbsenceType.PARENTAL_LEAVE in NON_DELETABLE_TYPES
    for absence_type in NON_DELETABLE_TYPES:
        state = with_absence(CITIZEN, registered(absence_type, date(2024, 3, 1)))
        decision = handle(state, deleted(absence_type, date(2024, 3, 1)))
        assert decision.outputs == (Rejected("del-1", "E304 absence-not-deletable", decision.outputs[0].reason),)
        assert "a1" in decision.state.absences
        # Not yet started: the pre-2021 rule still lets it go.
        state = with_absence(CITIZEN, registered(absence_type, date(2024, 6, 1)))
        assert isinstance(handle(state, deleted(absence_type, date(2024, 6, 1))).outputs[0], Notice)


def test_r6_2_stored_absence_decides_not_the_event() -> None:
    # The event claims a deletable type and a future start; the stored absence is a started Barsel.
    state = with_absence(CITIZEN, registered(AbsenceType.PARENTAL_LEAVE, date(2024, 3, 1)))
    decision = handle(state, deleted(AbsenceType.HOLIDAY, date(2025, 1, 1)))
    assert isinstance(decision.outputs[0], Rejected)


def test_r6_2_unknown_absence_refused() -> None:
    decision = handle(CITIZEN, deleted(absence_id="nope"))
    assert isinstance(decision.outputs[0], Rejected)
    assert decision.outputs[0].code == "E304 absence-not-deletable"


def test_r6_2_only_jobcentre_or_akasse_may_delete() -> None:
    state = with_absence(CITIZEN, registered())
    assert isinstance(handle(state, deleted(by="benefits:101")).outputs[0], Rejected)
    assert isinstance(handle(state, deleted(by="akasse:5")).outputs[0], Notice)


def test_r6_3_deletion_notifies_akasse_benefits_and_jobcentre_but_not_the_deleter() -> None:
    state = with_absence(CITIZEN, registered(AbsenceType.HOLIDAY, date(2024, 4, 1), end=date(2024, 4, 5)))
    decision = handle(state, deleted(AbsenceType.HOLIDAY, date(2024, 4, 1), by="jobcenter:101"))
    (notice,) = decision.outputs
    assert isinstance(notice, Notice)
    assert notice.kind == "absence-deleted"
    assert dict(notice.details) == {"absence_id": "a1", "absence_type": "HOLIDAY", "start_date": "2024-04-01",
                                    "end_date": "2024-04-05", "akasse": "5"}
    assert recipients(notice, decision.state) == ("akasse:5", "benefits:101")
    by_akasse = handle(state, deleted(AbsenceType.HOLIDAY, date(2024, 4, 1), by="akasse:5"))
    assert recipients(by_akasse.outputs[0], by_akasse.state) == ("benefits:101", "jobcenter:101")  # type: ignore[arg-type]


def test_r6_3_akasse_and_municipality_on_the_event_win_over_state() -> None:
    state = with_absence(CITIZEN, registered())
    decision = handle(state, deleted(by="jobcenter:147", akasse="24", municipality="147"))
    notice = decision.outputs[0]
    assert isinstance(notice, Notice)
    assert recipients(notice, decision.state) == ("akasse:24", "benefits:147")


def test_r6_3_citizen_without_akasse_notifies_benefits_and_jobcentre_only() -> None:
    state = with_absence(replace(CITIZEN, akasse=None), registered())
    decision = handle(state, deleted(by=""))
    assert recipients(decision.outputs[0], decision.state) == ("benefits:101", "jobcenter:101")  # type: ignore[arg-type]


def test_r6_3_replayed_deletion_changes_and_sends_nothing() -> None:
    state = with_absence(CITIZEN, registered())
    first = handle(state, deleted())
    again = handle(first.state, deleted())
    assert again == Decision(state=first.state)


def test_r6_3_notice_id_is_deterministic() -> None:
    state = with_absence(CITIZEN, registered())
    a, b = handle(state, deleted()), handle(state, deleted())
    assert a.outputs[0] == b.outputs[0]


def test_r7_3_absences_of_a_deceased_citizen_are_refused() -> None:
    dead = replace(with_absence(CITIZEN, registered()), deceased_on=date(2024, 5, 1))
    for event in (registered(absence_id="a9"), deleted()):
        outputs = handle(dead, event).outputs
        assert isinstance(outputs[0], Rejected) and outputs[0].code == "E301 citizen-deceased"
