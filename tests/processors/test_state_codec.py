"""processors.state_codec: CitizenState <-> JSON-compatible dict, lossless."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.events import AbsenceType, DataArea
from processors.model import Absence, CaseState, CitizenState, Deadline, PersonalData
from processors.state_codec import StateDecodeError, state_from_dict, state_to_dict
from tests.processors.lifecycle_driver import CPR, Run, case_created, utc

texts = st.text(max_size=12)
ids = st.text(alphabet="abcdefghij0123456789-|:", min_size=1, max_size=12)
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
opt_days = st.none() | days


def frozen_maps(values: st.SearchStrategy[object]) -> st.SearchStrategy[MappingProxyType[str, object]]:
    return st.dictionaries(ids, values, max_size=4).map(MappingProxyType)


cases = st.builds(
    CaseState,
    case_id=ids, receiving_municipality=texts, jobcenter_municipality=texts,
    contact_group=st.integers(min_value=-(2**40), max_value=2**40),
    handover_date=days, cv_takeover_date=days, contract_takeover_date=days, cv_update_deadline=days,
    case_type=texts, closed_areas=st.frozensets(st.sampled_from(DataArea)),
    cv_creation_open=st.booleans(), contract_formation_open=st.booleans(), handover_passed=st.booleans(),
    cv_responsibility_with_citizen=st.booleans(), contract_concluded_on=opt_days, last_follow_up_on=opt_days,
    goals_met=st.booleans(),
)
absences = st.builds(Absence, absence_id=ids, absence_type=st.sampled_from(AbsenceType), start_date=days,
                     end_date=opt_days)
deadlines = st.builds(Deadline, rule=ids, due_date=days, case_id=st.just("") | ids)
states = st.builds(
    CitizenState,
    citizen_key=ids,
    personal=st.builds(PersonalData, cpr=st.none() | st.from_regex(r"\A[0-9]{10}\Z"), name=st.none() | texts),
    akasse=st.none() | texts,
    municipality=st.none() | texts,
    registered_jobseeker=st.booleans(),
    cases=frozen_maps(cases),
    absences=frozen_maps(absences),
    records=frozen_maps(st.tuples(texts, days)),
    pending=frozen_maps(deadlines),
    fired=st.frozensets(ids, max_size=5),
    notified=st.frozensets(ids, max_size=5),
    deceased_on=opt_days,
)


@given(states)
def test_round_trip_is_lossless(state: CitizenState) -> None:
    assert state_from_dict(state_to_dict(state)) == state


@given(states, st.lists(deadlines, max_size=4))
def test_known_deadlines_are_reused_only_where_equal(state: CitizenState, others: list[Deadline]) -> None:
    # A row's header holds the state's pending deadlines; a load hands them over to be reused.
    # Whatever is handed over, the state decodes to the same; equal ones are the same objects.
    known = {d.deadline_id: d for d in others}
    known.update({k: Deadline(d.rule, d.due_date, d.case_id) for k, d in state.pending.items()})
    for k, d in list(known.items())[:1]:  # one under a key it does not match
        known[k] = Deadline(d.rule + "x", d.due_date, d.case_id)
    back = state_from_dict(state_to_dict(state), known)
    assert back == state
    for k, d in back.pending.items():
        if known.get(k) == d:
            assert d is known[k]


@given(states)
def test_round_trip_through_json_text(state: CitizenState) -> None:
    text = json.dumps(state_to_dict(state), sort_keys=True)
    back = state_from_dict(json.loads(text))
    assert back == state
    # Deterministic encoding: the same state always gives the same bytes.
    assert json.dumps(state_to_dict(back), sort_keys=True) == text


def test_codec_covers_every_field_of_the_model() -> None:
    # Fails when a field is added to the model but not to the codec, instead of silently dropping it.
    run = Run()
    run.send(case_created())
    encoded: dict[str, Any] = state_to_dict(run.state)
    assert set(encoded) - {"v"} == {f.name for f in fields(CitizenState)}
    assert set(encoded["personal"]) == {f.name for f in fields(PersonalData)}
    [case] = encoded["cases"].values()
    assert set(case) == {f.name for f in fields(CaseState)}
    pending = next(iter(encoded["pending"].values()))
    assert set(pending) == {f.name for f in fields(Deadline) if f.init}  # deadline_id is derived


def test_state_built_by_the_lifecycle_round_trips_and_keeps_working() -> None:
    run = Run()
    run.send(case_created(early_cv_takeover_date=date(2026, 3, 10)))
    run.advance(utc(2026, 3, 29))
    decoded = state_from_dict(json.loads(json.dumps(state_to_dict(run.state))))
    assert decoded == run.state
    assert decoded.personal.cpr == CPR
    run.state = decoded
    run.advance(utc(2026, 6, 1))  # deadlines still fire from the decoded state
    assert decoded.cases["case-1"].closed_areas == set(DataArea)
    assert run.state.cases["case-1"].cv_responsibility_with_citizen


def test_encoding_uses_plain_json_types() -> None:
    state = CitizenState(
        citizen_key="ck", fired=frozenset({"b", "a"}), deceased_on=date(2028, 2, 29),
        absences=MappingProxyType({"a1": Absence("a1", AbsenceType.SICKNESS, date(2026, 1, 1))}),
    )
    encoded = state_to_dict(state)
    assert encoded["fired"] == ["a", "b"] and encoded["deceased_on"] == "2028-02-29"
    assert encoded["absences"] == {"a1": {"absence_id": "a1", "absence_type": "SICKNESS",
                                          "start_date": "2026-01-01", "end_date": None}}


def test_missing_optional_keys_decode_to_defaults() -> None:
    assert state_from_dict({"citizen_key": "ck"}) == CitizenState(citizen_key="ck")


def test_undecodable_state_raises_without_leaking_values() -> None:
    with pytest.raises(StateDecodeError, match="missing key 'citizen_key'"):
        state_from_dict({"personal": {"cpr": CPR}})
    with pytest.raises(StateDecodeError) as bad_date:
        state_from_dict({"citizen_key": "ck", "deceased_on": CPR})
    assert CPR not in str(bad_date.value)
    with pytest.raises(StateDecodeError, match="version"):
        state_from_dict({"v": 99, "citizen_key": "ck"})
