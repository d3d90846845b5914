from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import absence, registration
from processors.events import AbsenceDeleted, AbsenceRegistered, AbsenceType, Event, JobseekerRegistered
from processors.model import CitizenState, Notice
from processors.routing import (
    POST_MORTEM_KINDS,
    ROUTES,
    InvalidSubscriberId,
    UnroutableNotice,
    parse_subscriber_id,
    recipients,
    subscriber_for_topic,
    topic_for_subscriber,
)

NOW = datetime(2024, 5, 10, 6, 0, tzinfo=UTC)
MUNICIPALITIES = ("101", "147", "461", "751", "851")
FUNDS = ("5", "10", "24")

# The spec, written out independently of ROUTES (DOMAIN.md R3, R6.3, R7, R10 and the brief):
# kind -> which relations of the citizen are entitled.
SPEC: dict[str, frozenset[str]] = {
    "absence-deleted": frozenset({"akasse", "benefits", "jobcenter"}),
    "handover-date-passed": frozenset({"jobcenter", "benefits"}),
    **{k: frozenset({"jobcenter"}) for k in (
        "case-created", "jobnet-profile-requested", "cv-responsibility-moved", "contract-overdue",
        "follow-up-overdue", "cv-creation-open", "contract-formation-open")},
    "jobseeker-registered": frozenset({"jobcenter", "akasse"}),
    "jobseeker-deregistered": frozenset({"jobcenter", "akasse"}),
    "citizen-deceased": frozenset({"told"}),
    "citizen-deleted": frozenset({"told"}),
}


def notice(kind: str, *, municipality: str | None = None, exclude: str | None = None,
           akasse: str | None = None) -> Notice:
    details = MappingProxyType({"akasse": akasse} if akasse else {})
    return Notice(f"n-{kind}", kind, "e1", "Test", details, municipality, exclude)


CITIZEN = CitizenState(citizen_key="ck", akasse="5", municipality="101")


def test_r3_1_routing_handover_date_passed_goes_to_receiving_municipality() -> None:
    n = notice("handover-date-passed", municipality="851")
    assert recipients(n, CITIZEN) == ("benefits:851", "jobcenter:851")


def test_r6_3_routing_absence_deleted_spares_the_deleter() -> None:
    assert recipients(notice("absence-deleted", exclude="akasse:5"), CITIZEN) == ("benefits:101", "jobcenter:101")


def test_r3_1_routing_role_without_id_is_absent() -> None:
    nobody = CitizenState(citizen_key="ck")
    assert recipients(notice("absence-deleted"), nobody) == ()
    assert recipients(notice("absence-deleted", municipality="147"), nobody) == ("benefits:147", "jobcenter:147")


def test_r7_routing_death_notices_go_to_everyone_told_and_nothing_else_goes_out() -> None:
    told = frozenset({"akasse:10", "jobcenter:461", "archive:rigsarkivet"})
    dead = replace(CITIZEN, notified=told, deceased_on=date(2024, 5, 1))
    assert set(recipients(notice("citizen-deceased"), dead)) == told
    for kind in set(ROUTES) - POST_MORTEM_KINDS:
        assert recipients(notice(kind), dead) == ()


def test_r8_2_routing_screening_result_goes_to_statistics() -> None:
    assert recipients(notice("screening-result-for-statistics"), CITIZEN) == ("statistics:star",)


def test_r3_1_routing_every_specified_kind_has_a_route_and_unknown_kinds_fail_loudly() -> None:
    assert set(SPEC) <= set(ROUTES)
    with pytest.raises(UnroutableNotice):
        recipients(notice("no-such-kind"), CITIZEN)


@pytest.mark.parametrize(("sub_id", "topic"), [
    ("akasse:5", "dfdg.notify.akasse.5"),
    ("jobcenter:101", "dfdg.notify.jobcenter.101"),
    ("benefits:851", "dfdg.notify.benefits.851"),
    ("archive:rigsarkivet", "dfdg.notify.archive.rigsarkivet"),
    ("statistics:star", "dfdg.notify.statistics.star"),
])
def test_topic_for_subscriber_and_back(sub_id: str, topic: str) -> None:
    assert topic_for_subscriber(sub_id) == topic
    assert subscriber_for_topic(topic) == sub_id


@pytest.mark.parametrize("bad", ["jobcenter:1010", "jobcenter:999", "benefits:abc", "akasse:", "akasse:x1",
                                 "police:101", "jobcenter", "archive:Rigs Arkivet", "archive:a.b"])
def test_invalid_subscriber_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSubscriberId):
        parse_subscriber_id(bad)
    with pytest.raises(InvalidSubscriberId):
        topic_for_subscriber(bad)


def test_subscriber_for_topic_refuses_other_topics() -> None:
    for topic in ("dfdg.case-created", "dfdg.notify.jobcenter", "other.notify.akasse.5"):
        with pytest.raises(InvalidSubscriberId):
            subscriber_for_topic(topic)


# ---- property: over random citizens, memberships and events ----

subscriber_ids = st.one_of(
    st.sampled_from(FUNDS).map(lambda f: f"akasse:{f}"),
    st.sampled_from(MUNICIPALITIES).map(lambda m: f"jobcenter:{m}"),
    st.sampled_from(MUNICIPALITIES).map(lambda m: f"benefits:{m}"),
    st.just("archive:rigsarkivet"), st.just("statistics:star"),
)
citizens = st.builds(
    CitizenState,
    citizen_key=st.just("ck"),
    akasse=st.none() | st.sampled_from(FUNDS),
    municipality=st.none() | st.sampled_from(MUNICIPALITIES),
    notified=st.frozensets(subscriber_ids, max_size=5),
)
notices = st.builds(
    notice,
    st.sampled_from(sorted(SPEC)),
    municipality=st.none() | st.sampled_from(MUNICIPALITIES),
    exclude=st.none() | subscriber_ids,
    akasse=st.none() | st.sampled_from(FUNDS),
)


def relations(n: Notice, s: CitizenState) -> dict[str, frozenset[str]]:
    """Who stands in which relation to the citizen for this notice (the test's own oracle)."""
    m = n.municipality or s.municipality
    fund = n.details.get("akasse") or s.akasse
    return {
        "akasse": frozenset({f"akasse:{fund}"} if fund else set()),
        "jobcenter": frozenset({f"jobcenter:{m}"} if m else set()),
        "benefits": frozenset({f"benefits:{m}"} if m else set()),
        "told": s.notified,
    }


def check(n: Notice, s: CitizenState) -> None:
    got = set(recipients(n, s))
    rel = relations(n, s)
    related = frozenset().union(*rel.values())
    entitled = frozenset().union(*(rel[r] for r in SPEC[n.kind])) - {n.exclude}
    assert got <= related, f"{n.kind}: {got - related} have no relation to the citizen"
    assert n.exclude not in got, f"{n.kind}: the acting subscriber got an echo"
    assert entitled <= got, f"{n.kind}: {entitled - got} missed a notice they are entitled to"
    assert got <= entitled


@settings(max_examples=400, deadline=None)
@given(citizens, notices)
def test_r3_1_routing_property_no_stranger_is_told_and_nobody_entitled_is_missed(s: CitizenState, n: Notice) -> None:
    check(n, s)


@st.composite
def event_sequences(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for i in range(draw(st.integers(1, 8))):
        common = {"event_id": f"e{i}", "occurred_at": NOW, "producer": "t", "cpr": "0101901234"}
        absence_id = f"a{draw(st.integers(0, 2))}"
        choice = draw(st.sampled_from(("register", "absence", "delete")))
        if choice == "register":
            events.append(JobseekerRegistered(**common, name="N", registration_date=date(2024, 1, 1),
                                              municipality=draw(st.sampled_from(MUNICIPALITIES)),
                                              benefit_category="DAGPENGE", unemployment_degree=1.0,
                                              akasse=draw(st.none() | st.sampled_from(FUNDS))))
        elif choice == "absence":
            events.append(AbsenceRegistered(**common, absence_id=absence_id, absence_type=AbsenceType.HOLIDAY,
                                            start_date=date(2024, 4, 1)))
        else:
            events.append(AbsenceDeleted(**common, absence_id=absence_id, absence_type=AbsenceType.HOLIDAY,
                                         start_date=date(2024, 4, 1), deleted_by=draw(subscriber_ids),
                                         akasse=draw(st.none() | st.sampled_from(FUNDS)),
                                         municipality=draw(st.none() | st.sampled_from(MUNICIPALITIES))))
    return events


@settings(max_examples=300, deadline=None)
@given(event_sequences())
def test_r6_3_routing_property_over_event_sequences(events: list[Event]) -> None:
    handlers = {**absence.HANDLERS, **registration.HANDLERS}
    state = CitizenState(citizen_key="ck")
    for event in events:
        decision = handlers[type(event)](state, event, NOW)
        state = decision.state
        for out in decision.outputs:
            if isinstance(out, Notice):
                check(out, state)
                if isinstance(event, AbsenceDeleted):
                    # R6.3 in the citizen's own terms: the event's or else the registered relations.
                    fund = event.akasse or state.akasse
                    m = event.municipality or state.municipality
                    want = {f"akasse:{fund}"} if fund else set()
                    want |= {f"benefits:{m}", f"jobcenter:{m}"} if m else set()
                    assert set(recipients(out, state)) == want - {event.deleted_by}
