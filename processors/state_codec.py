"""CitizenState <-> JSON-compatible dict, lossless and fast (it runs for every event).

Written out field by field rather than through ``dataclasses.asdict`` (which deep-copies and
cannot rebuild enums, dates or frozensets). Dates are ISO strings, enums their values,
frozensets sorted lists, mappings dicts. Personal data stays in its own ``personal`` object,
so the shell can encrypt or shred it as a unit. Keys with a default may be absent on decode,
so states stored before a field was added still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any, cast

from processors.events import AbsenceType, DataArea
from processors.model import Absence, CaseState, CitizenState, Deadline, PersonalData, iso_date

__all__ = ["FORMAT_VERSION", "StateDecodeError", "state_from_dict", "state_to_dict"]

FORMAT_VERSION = 1


class StateDecodeError(ValueError):
    """A stored state does not decode: wrong version, a missing key or a malformed value."""


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _date(value: object) -> date:
    return date.fromisoformat(cast(str, value))


def _opt_date(value: object) -> date | None:
    return None if value is None else date.fromisoformat(cast(str, value))


def _case_to(c: CaseState) -> dict[str, object]:
    return {
        "case_id": c.case_id,
        "receiving_municipality": c.receiving_municipality,
        "jobcenter_municipality": c.jobcenter_municipality,
        "contact_group": c.contact_group,
        "handover_date": iso_date(c.handover_date),
        "cv_takeover_date": iso_date(c.cv_takeover_date),
        "contract_takeover_date": iso_date(c.contract_takeover_date),
        "cv_update_deadline": iso_date(c.cv_update_deadline),
        "case_type": c.case_type,
        "closed_areas": sorted(a.value for a in c.closed_areas),
        "cv_creation_open": c.cv_creation_open,
        "contract_formation_open": c.contract_formation_open,
        "handover_passed": c.handover_passed,
        "cv_responsibility_with_citizen": c.cv_responsibility_with_citizen,
        "contract_concluded_on": _d(c.contract_concluded_on),
        "last_follow_up_on": _d(c.last_follow_up_on),
        "goals_met": c.goals_met,
    }


def _case_from(d: Mapping[str, Any]) -> CaseState:
    return CaseState(
        case_id=d["case_id"],
        receiving_municipality=d["receiving_municipality"],
        jobcenter_municipality=d["jobcenter_municipality"],
        contact_group=int(d["contact_group"]),
        handover_date=_date(d["handover_date"]),
        cv_takeover_date=_date(d["cv_takeover_date"]),
        contract_takeover_date=_date(d["contract_takeover_date"]),
        cv_update_deadline=_date(d["cv_update_deadline"]),
        case_type=d.get("case_type", "INTEGRATION_PROGRAMME"),
        closed_areas=frozenset(DataArea(a) for a in d.get("closed_areas", ())),
        cv_creation_open=bool(d.get("cv_creation_open", False)),
        contract_formation_open=bool(d.get("contract_formation_open", False)),
        handover_passed=bool(d.get("handover_passed", False)),
        cv_responsibility_with_citizen=bool(d.get("cv_responsibility_with_citizen", False)),
        contract_concluded_on=_opt_date(d.get("contract_concluded_on")),
        last_follow_up_on=_opt_date(d.get("last_follow_up_on")),
        goals_met=bool(d.get("goals_met", False)),
    )


def state_to_dict(state: CitizenState) -> dict[str, object]:
    """Encode ``state`` as a dict of JSON types (str, int, bool, None, list, dict)."""
    return {
        "v": FORMAT_VERSION,
        "citizen_key": state.citizen_key,
        "personal": {"cpr": state.personal.cpr, "name": state.personal.name},
        "akasse": state.akasse,
        "municipality": state.municipality,
        "registered_jobseeker": state.registered_jobseeker,
        "cases": {k: _case_to(c) for k, c in state.cases.items()},
        "absences": {
            k: {
                "absence_id": a.absence_id,
                "absence_type": a.absence_type.value,
                "start_date": a.start_date.isoformat(),
                "end_date": _d(a.end_date),
            }
            for k, a in state.absences.items()
        },
        "records": {k: [kind, day.isoformat()] for k, (kind, day) in state.records.items()},
        "record_details": {k: dict(v) for k, v in state.record_details.items()},
        "pending": {
            k: {"rule": p.rule, "due_date": p.due_iso, "case_id": p.case_id}
            for k, p in state.pending.items()
        },
        "fired": sorted(state.fired),
        "notified": sorted(state.notified),
        "deceased_on": _d(state.deceased_on),
    }


def _pending(raw: Mapping[str, Any], known: Mapping[str, Deadline]) -> dict[str, Deadline]:
    """The pending deadlines, each taken from ``known`` when it holds an equal one under the same
    key (compared as stored: a deadline's id ends with its ISO due date), else made."""
    pending: dict[str, Deadline] = {}
    for k, p in raw.items():
        deadline = known.get(k)
        if (deadline is None or deadline.rule != p["rule"] or deadline.case_id != p.get("case_id", "")
                or not deadline.deadline_id.endswith(p["due_date"])):
            deadline = Deadline(rule=p["rule"], due_date=_date(p["due_date"]), case_id=p.get("case_id", ""))
        pending[k] = deadline
    return pending


def _decode(d: Mapping[str, Any], known: Mapping[str, Deadline]) -> CitizenState:
    version = d.get("v", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise StateDecodeError(f"state format version {version!r} is not {FORMAT_VERSION}")
    personal = d.get("personal") or {}
    return CitizenState(
        citizen_key=d["citizen_key"],
        personal=PersonalData(cpr=personal.get("cpr"), name=personal.get("name")),
        akasse=d.get("akasse"),
        municipality=d.get("municipality"),
        registered_jobseeker=bool(d.get("registered_jobseeker", False)),
        cases=MappingProxyType({k: _case_from(c) for k, c in d.get("cases", {}).items()}),
        absences=MappingProxyType({
            k: Absence(
                absence_id=a["absence_id"],
                absence_type=AbsenceType(a["absence_type"]),
                start_date=_date(a["start_date"]),
                end_date=_opt_date(a.get("end_date")),
            )
            for k, a in d.get("absences", {}).items()
        }),
        records=MappingProxyType({k: (str(kind), _date(day)) for k, (kind, day) in d.get("records", {}).items()}),
        # Absent in states written before R8.2 delivered the result itself: nothing to deliver.
        record_details=MappingProxyType({
            k: MappingProxyType({str(f): str(v) for f, v in details.items()})
            for k, details in d.get("record_details", {}).items()
        }),
        pending=MappingProxyType(_pending(d.get("pending", {}), known)),
        fired=frozenset(d.get("fired", ())),
        notified=frozenset(d.get("notified", ())),
        deceased_on=_opt_date(d.get("deceased_on")),
    )


def state_from_dict(data: Mapping[str, object], known: Mapping[str, Deadline] | None = None) -> CitizenState:
    """Decode what ``state_to_dict`` produced; raises ``StateDecodeError`` when it cannot.
    ``known``: deadlines already decoded, by id (a row's clear header holds the pending ones; a
    load then makes each once, not twice)."""
    try:
        return _decode(data, known or {})
    except StateDecodeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Name the failure and a missing key, never a value: a stored state holds personal data.
        detail = f" (missing key {exc.args[0]!r})" if isinstance(exc, KeyError) else ""
        raise StateDecodeError(f"stored citizen state does not decode: {type(exc).__name__}{detail}") from None
