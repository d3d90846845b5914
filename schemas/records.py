"""Outbound records the pipeline publishes (namespace ``dk.dfdg.out``), as frozen dataclasses.

Each class mirrors ``schemas/<ClassName>.avsc`` field for field. To add a record: write
the ``.avsc``, the dataclass, and one ``register_record`` line at the bottom of this file.
Ids here are deterministic (``processors.model.deterministic_id``) so a replay yields the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

from processors.events import DataArea
from processors.frozen import quick_init
from schemas.registry import OUT_NAMESPACE, register_record

__all__ = ["DataAreaClosed", "FetchRefused", "Notification"]


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A message to one subscriber (``dfdg.notify.<role>.<id>``) about one citizen."""

    notification_id: str
    recipient: str
    citizen_key: str
    kind: str
    cause_event_id: str
    cause_type: str
    created_at: datetime
    # Personal fields, sealed for this recipient (docs/security.md): never in clear on a topic.
    personal: bytes | None = None
    # Thin payload (absence_id, absence_type, start_date, ...): strings only, no free text.
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class DataAreaClosed:
    """R2.1: nothing more is fetched from the asylum operator for this data area."""

    event_id: str
    citizen_key: str
    case_id: str
    data_area: DataArea
    closed_on: date
    occurred_at: datetime


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class FetchRefused:
    """R2.3: a fetch request was refused; ``reason`` says why in words a caseworker can act on."""

    event_id: str
    citizen_key: str
    cause_event_id: str
    case_id: str
    data_area: DataArea
    reason: str
    occurred_at: datetime


register_record(Notification, f"{OUT_NAMESPACE}.Notification")
register_record(DataAreaClosed, f"{OUT_NAMESPACE}.DataAreaClosed")
register_record(FetchRefused, f"{OUT_NAMESPACE}.FetchRefused")
