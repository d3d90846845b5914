from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from processors.events import JobseekerDeregistered, JobseekerRegistered
from processors.model import CitizenState, Notice, Rejected
from processors.registration import HANDLERS
from processors.routing import recipients

NOW = datetime(2024, 5, 10, 6, 0, tzinfo=UTC)
EMPTY = CitizenState(citizen_key="ck-7")


def reg(akasse: str | None = "10", municipality: str = "461", event_id: str = "r1") -> JobseekerRegistered:
    return JobseekerRegistered(event_id=event_id, occurred_at=NOW, producer="t", cpr="0101901234", name="Test Person",
                               registration_date=date(2024, 5, 1), municipality=municipality,
                               benefit_category="DAGPENGE", unemployment_degree=1.0, job_titles=("Smed",),
                               akasse=akasse)


def dereg(event_id: str = "d1") -> JobseekerDeregistered:
    return JobseekerDeregistered(event_id=event_id, occurred_at=NOW, producer="t", cpr="0101901234",
                                 deregistration_date=date(2024, 6, 1), reason="JOB")


def test_r10_1_registration_records_akasse_municipality_and_personal_data() -> None:
    decision = HANDLERS[JobseekerRegistered](EMPTY, reg(), NOW)
    s = decision.state
    assert (s.akasse, s.municipality, s.registered_jobseeker) == ("10", "461", True)
    assert (s.personal.cpr, s.personal.name) == ("0101901234", "Test Person")


def test_r10_1_registration_notifies_jobcentre_and_akasse_without_personal_data() -> None:
    decision = HANDLERS[JobseekerRegistered](EMPTY, reg(), NOW)
    (notice,) = decision.outputs
    assert isinstance(notice, Notice) and notice.kind == "jobseeker-registered"
    assert recipients(notice, decision.state) == ("akasse:10", "jobcenter:461")
    assert "0101901234" not in repr(notice) and "Test Person" not in repr(notice)


def test_r10_1_latest_registration_wins_and_none_means_not_a_member() -> None:
    s = HANDLERS[JobseekerRegistered](EMPTY, reg(), NOW).state
    s = HANDLERS[JobseekerRegistered](s, reg(akasse=None, municipality="751", event_id="r2"), NOW).state
    assert (s.akasse, s.municipality) == (None, "751")


def test_r10_1_deregistration_keeps_akasse_and_municipality() -> None:
    s = HANDLERS[JobseekerRegistered](EMPTY, reg(), NOW).state
    decision = HANDLERS[JobseekerDeregistered](s, dereg(), NOW)
    assert decision.state.registered_jobseeker is False
    assert (decision.state.akasse, decision.state.municipality) == ("10", "461")
    (notice,) = decision.outputs
    assert isinstance(notice, Notice)
    assert recipients(notice, decision.state) == ("akasse:10", "jobcenter:461")
    assert dict(notice.details) == {"deregistration_date": "2024-06-01"}


def test_r10_1_replays_and_deregistering_a_non_registered_citizen_send_nothing() -> None:
    first = HANDLERS[JobseekerRegistered](EMPTY, reg(), NOW)
    assert HANDLERS[JobseekerRegistered](first.state, reg(), NOW).outputs == ()
    assert HANDLERS[JobseekerDeregistered](EMPTY, dereg(), NOW).outputs == ()


def test_r7_3_registration_of_a_deceased_citizen_is_refused() -> None:
    dead = replace(EMPTY, deceased_on=date(2024, 1, 1))
    (out,) = HANDLERS[JobseekerRegistered](dead, reg(), NOW).outputs
    assert isinstance(out, Rejected) and out.code == "E301 citizen-deceased"
