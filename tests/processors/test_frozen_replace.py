"""``processors.frozen.replace`` gives what ``dataclasses.replace`` gives, for every dataclass of
the core, and refuses what it refuses."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from processors.frozen import replace
from processors.model import CaseState, CitizenState, Deadline, PersonalData


def test_the_same_result_as_dataclasses_replace_and_the_original_is_untouched() -> None:
    state = CitizenState(citizen_key="k" * 64, municipality="101")
    changed = replace(state, municipality="851", personal=PersonalData(cpr=None, name="x"))
    assert changed == dataclasses.replace(state, municipality="851", personal=PersonalData(cpr=None, name="x"))
    assert state.municipality == "101" and changed.citizen_key == state.citizen_key
    assert replace(state) == state and replace(state) is not state


def test_a_derived_field_is_derived_again_and_checks_still_run() -> None:
    """``Deadline.deadline_id`` is made by ``__post_init__`` from the fields it names."""
    deadline = Deadline("R3.1", date(2026, 1, 1), "case-1")
    moved = replace(deadline, due_date=date(2026, 2, 1))
    assert moved.deadline_id == dataclasses.replace(deadline, due_date=date(2026, 2, 1)).deadline_id
    assert moved.deadline_id != deadline.deadline_id
    with pytest.raises((TypeError, ValueError)):
        replace(deadline, deadline_id="chosen")  # not a field __init__ takes


def test_an_unknown_field_and_a_non_dataclass_are_refused() -> None:
    with pytest.raises(TypeError, match="no field"):
        replace(CitizenState(citizen_key="k"), citizen="x")
    with pytest.raises(TypeError):
        replace(object())
    assert [f.name for f in dataclasses.fields(CaseState)]  # every class is built the same way


def test_a_class_whose_init_only_stores_fields_is_built_equal_hashable_and_still_frozen() -> None:
    """``CitizenState`` has no ``__post_init__``: its fields are stored without ``__init__``."""
    from types import MappingProxyType

    day = date(2026, 1, 1)
    case = CaseState("c-1", "101", "851", 2, day, day, day, day)
    state = CitizenState(citizen_key="k" * 43, akasse="a-1", cases=MappingProxyType({"c-1": case}),
                         fired=frozenset({"x"}), deceased_on=date(2026, 5, 1))
    for changes in ({}, {"akasse": None}, {"fired": frozenset({"x", "y"}), "municipality": "851"}):
        made = replace(state, **changes)
        assert made == dataclasses.replace(state, **changes)  # type: ignore[arg-type]
        assert hash(made.fired) == hash(dataclasses.replace(state, **changes).fired)  # type: ignore[arg-type]
        assert type(made) is CitizenState
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.akasse = "b"  # type: ignore[misc]
    assert state.akasse == "a-1"
