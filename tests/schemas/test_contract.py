"""The .avsc files and the Python dataclasses are one contract: they must agree field for field."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

import pytest

from processors.events import EVENT_TYPES, DeadlineDue
from schemas import records
from schemas.catalogue import SCHEMA_DIR
from schemas.codec import Codec
from schemas.registry import register_record, registered_classes

OWN_RECORDS = (records.Notification, records.DataAreaClosed, records.FetchRefused)
CONTRACT: dict[type, str] = {
    **{cls: "dk.dfdg.events" for cls in EVENT_TYPES},
    DeadlineDue: "dk.dfdg.internal",
    **{cls: "dk.dfdg.out" for cls in OWN_RECORDS},
}


def _schema(cls: type) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / f"{cls.__name__}.avsc").read_text(encoding="utf-8")))


def _matches(tp: Any, avro: Any) -> bool:
    """Whether Python type ``tp`` is represented by Avro type ``avro`` as the contract says."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return isinstance(avro, list) and len(avro) == 2 and avro[0] == "null" and _matches(members[0], avro[1])
    if origin is tuple:
        return isinstance(avro, dict) and avro["type"] == "array" and _matches(typing.get_args(tp)[0], avro["items"])
    if origin in (Mapping, dict):
        return isinstance(avro, dict) and avro["type"] == "map" and _matches(typing.get_args(tp)[1], avro["values"])
    if isinstance(tp, type) and issubclass(tp, Enum):
        return (isinstance(avro, dict) and avro["type"] == "enum" and avro["name"] == tp.__name__
                and avro["symbols"] == [m.value for m in tp])
    expected = {
        str: "string", bytes: "bytes", bool: "boolean", int: "int", float: "double",
        date: {"type": "int", "logicalType": "date"},
        datetime: {"type": "long", "logicalType": "timestamp-millis"},
    }
    return bool(expected.get(tp) == avro)


def _python_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        if isinstance(f.default, Enum):
            return f.default.value
        return list(f.default) if isinstance(f.default, tuple) else f.default
    if f.default_factory is not dataclasses.MISSING:
        made = f.default_factory()
        return dict(made) if isinstance(made, Mapping) else list(made)
    return dataclasses.MISSING


@pytest.mark.parametrize("cls", list(CONTRACT), ids=lambda c: c.__name__)
def test_schema_matches_dataclass_field_for_field(cls: type) -> None:
    schema = _schema(cls)
    assert (schema["namespace"], schema["name"]) == (CONTRACT[cls], cls.__name__)
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    assert [f["name"] for f in schema["fields"]] == [f.name for f in fields]
    for f, avro in zip(fields, schema["fields"], strict=True):
        assert _matches(hints[f.name], avro["type"]), f"{cls.__name__}.{f.name}: {avro['type']!r}"
        expected = _python_default(f)
        if expected is dataclasses.MISSING:
            assert "default" not in avro, f"{cls.__name__}.{f.name} has a schema default but none in Python"
        else:
            assert avro.get("default", dataclasses.MISSING) == expected, f"{cls.__name__}.{f.name} default"


def test_common_event_fields_use_the_agreed_types() -> None:
    for cls in (*EVENT_TYPES, DeadlineDue):
        by_name = {f["name"]: f["type"] for f in _schema(cls)["fields"]}
        assert by_name["event_id"] == "string"
        assert by_name["producer"] == "string"
        assert by_name["occurred_at"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_every_schema_field_and_record_has_a_doc() -> None:
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema.get("doc", "").strip(), f"{path.name} has no record doc"
        for f in schema["fields"]:
            assert f.get("doc", "").strip(), f"{path.name}: field {f['name']} has no doc"


def test_every_schema_has_a_class_and_every_class_a_schema() -> None:
    codec = Codec.default()
    classes = registered_classes()
    assert set(codec.catalogue.current) == set(classes)
    for name, cls in classes.items():
        assert codec.full_name(cls) == name


def test_register_record_refuses_to_rebind_a_name_or_a_class() -> None:
    register_record(records.Notification, "dk.dfdg.out.Notification")  # same pair again: harmless
    with pytest.raises(ValueError, match="already bound"):
        register_record(records.FetchRefused, "dk.dfdg.out.Notification")
    with pytest.raises(ValueError, match="already bound"):
        register_record(records.Notification, "dk.dfdg.out.Other")
