"""``replace`` for the core's frozen dataclasses: the same result as ``dataclasses.replace``.

Every rule returns a new state made by ``replace``, several times an event.
``dataclasses.replace`` looks each class's fields up on every call (4.3 µs for a
``CitizenState`` here). This makes one function per class, once, that passes each field on or
takes its change: ~2.8 µs. The class's ``__init__`` still runs, and with it
``__post_init__``'s checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["replace"]

T = TypeVar("T")

_builders: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def replace(obj: T, /, **changes: Any) -> T:
    """``obj`` with ``changes``; an unknown field name raises ``TypeError``, as dataclasses' does."""
    build = _builders.get(type(obj))
    if build is None:
        build = _builders[type(obj)] = _builder(type(obj))
    made: T = build(obj, changes)
    if changes:  # what no field took
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(changes))}")
    return made


def _builder(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError("replace() should be called on dataclass instances")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    arguments = ", ".join(f"{name}=changes.pop({name!r}, obj.{name})" for name in names)
    namespace: dict[str, Any] = {"cls": cls}
    exec(f"def build(obj, changes):\n    return cls({arguments})\n", namespace)  # noqa: S102 - field names only
    built: Callable[[Any, dict[str, Any]], Any] = namespace["build"]
    return built
