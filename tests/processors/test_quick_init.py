"""``quick_init`` replaces a dataclass's ``__init__`` with a faster one that must behave the same:
the same parameters (names, kinds, defaults), the same fields stored, ``__post_init__`` run, the
same refusals. Checked against the dataclass's own ``__init__`` for every class that uses it."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import date
from typing import Any

import pytest

import processors.events
import processors.model
import processors.pipeline
import schemas.records
import sinks.crypto
import streams.consumed
import streams.ingest
from processors.frozen import _ORIGINAL_INITS, quick_init
from processors.model import Deadline

MODULES = (processors.events, processors.model, processors.pipeline, schemas.records, sinks.crypto, streams.consumed,
           streams.ingest)
QUICK = sorted((cls for cls in _ORIGINAL_INITS if cls.__module__ in {m.__name__ for m in MODULES}),
               key=lambda cls: cls.__qualname__)


# Classes whose __post_init__ reads their fields: (the required arguments, every argument).
WITH_POST_INIT: dict[type, tuple[dict[str, Any], dict[str, Any]]] = {
    Deadline: ({"rule": "R3.1", "due_date": date(2026, 1, 2)}, {"rule": "R3.1", "due_date": date(2026, 1, 2),
                                                                "case_id": "c-1"}),
}


def test_the_hot_classes_have_the_quick_init() -> None:
    names = {cls.__name__ for cls in QUICK}
    assert {"CaseCreated", "CitizenState", "CaseState", "Deadline", "Outcome", "DataKey", "ConsumedMessage"} <= names
    assert len(QUICK) >= 30


def _shape(parameter: inspect.Parameter) -> tuple[str, Any, bool]:
    return parameter.name, parameter.kind, parameter.default is inspect.Parameter.empty


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__qualname__)
def test_same_parameters_and_the_same_fields_stored(cls: type) -> None:
    original = _ORIGINAL_INITS[cls]
    quick, theirs = inspect.signature(cls.__init__), inspect.signature(original)
    assert [_shape(p) for p in quick.parameters.values()] == [_shape(p) for p in theirs.parameters.values()]
    factories = {f.name for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING}
    for name, parameter in theirs.parameters.items():
        if parameter.default is not inspect.Parameter.empty and name not in factories:
            assert quick.parameters[name].default is parameter.default, name  # the same object
    fields = dataclasses.fields(cls)
    required = {f.name: object() for f in fields
                if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    given = {f.name: object() for f in fields if f.init}
    if hasattr(cls, "__post_init__"):  # it reads the values: real ones
        required, given = WITH_POST_INIT[cls]
    for arguments in (required, given):
        made, reference = object.__new__(cls), object.__new__(cls)
        cls.__init__(made, **arguments)
        original(reference, **arguments)
        for f in fields:
            assert getattr(made, f.name) == getattr(reference, f.name), f.name
            assert type(getattr(made, f.name)) is type(getattr(reference, f.name)), f.name
            if f.default_factory is not dataclasses.MISSING and f.name not in arguments:
                # A new value for each instance, as the dataclass makes it.
                again = object.__new__(cls)
                cls.__init__(again, **arguments)
                assert getattr(again, f.name) is not getattr(made, f.name) or _immutable(getattr(made, f.name))
        assert not (set(theirs.parameters) - {"self"}) - {f.name for f in fields if f.init}
    with pytest.raises(TypeError):
        cls(**{**given, "not_a_field": 1})
    if required:
        with pytest.raises(TypeError):
            cls()


def _immutable(value: object) -> bool:
    return isinstance(value, frozenset | tuple | str | bytes | int | float | type(None))


def test_post_init_still_runs() -> None:
    assert Deadline("R3.1", date(2026, 1, 2), "c-1").deadline_id == "R3.1|c-1|2026-01-02"
    assert Deadline("R3.1", date(2026, 1, 2)).case_id == ""


def test_a_class_it_cannot_speed_up_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError):
        quick_init(NoSlots)

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        y: dataclasses.InitVar[int] = 0

    with pytest.raises(TypeError):
        quick_init(WithInitVar)


def test_field_names_cannot_shadow_the_generated_code() -> None:
    @quick_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Awkward:
        MISSING: int = 1
        set_x: int = 2
        x: dict[str, int] = dataclasses.field(default_factory=dict)

    assert Awkward() == Awkward(1, 2, {}) and Awkward(5, 6, {"a": 1}).x == {"a": 1}
    assert Awkward().x is not Awkward().x
