"""Which Python class each Avro record name decodes into.

One dict, ``full name -> class``. The inbound events are registered here; outbound records
register themselves with ``register_record`` in the modules named in ``RECORD_MODULES``
(``schemas.records``, ``schemas.archive_records``). ``schemas.codec`` reads the registry once,
through ``registered_classes``, when a codec is built.
"""

from __future__ import annotations

import importlib

from processors.events import EVENT_TYPES, DeadlineDue

__all__ = [
    "EVENTS_NAMESPACE",
    "INTERNAL_NAMESPACE",
    "OUT_NAMESPACE",
    "RECORD_CLASSES",
    "RECORD_MODULES",
    "register_record",
    "registered_classes",
]

EVENTS_NAMESPACE = "dk.dfdg.events"
INTERNAL_NAMESPACE = "dk.dfdg.internal"
OUT_NAMESPACE = "dk.dfdg.out"

RECORD_CLASSES: dict[str, type] = {}

# Modules whose import registers records; a new module of records adds its name here.
RECORD_MODULES: tuple[str, ...] = ("schemas.records", "schemas.archive_records")


def register_record(cls: type, full_name: str) -> type:
    """Bind a frozen dataclass to the Avro record ``full_name``; returns ``cls`` so it works as a call or decorator aid.

    Registering the same pair twice is harmless; binding a name or a class to a second partner is a bug.
    """
    bound = RECORD_CLASSES.get(full_name)
    if bound is not None and bound is not cls:
        raise ValueError(f"{full_name} is already bound to {bound.__qualname__}")
    for name, other in RECORD_CLASSES.items():
        if other is cls and name != full_name:
            raise ValueError(f"{cls.__qualname__} is already bound to {name}")
    RECORD_CLASSES[full_name] = cls
    return cls


def registered_classes() -> dict[str, type]:
    """Every registered record (importing ``RECORD_MODULES`` first), as a copy of the registry."""
    for module in RECORD_MODULES:
        importlib.import_module(module)
    return dict(RECORD_CLASSES)


for _event_type in EVENT_TYPES:
    register_record(_event_type, f"{EVENTS_NAMESPACE}.{_event_type.__name__}")
register_record(DeadlineDue, f"{INTERNAL_NAMESPACE}.DeadlineDue")
