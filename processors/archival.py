"""What the archive must receive (R9) and the content of an archival package.

Which cases are archived is data: ``CASE_TYPES`` (the marking the archive guidance names first,
R9.3) and, for a case without a type (``UNTYPED_CASE``) or of a type the table does not know,
``CONTACT_GROUP_CASE_TYPES``.

*Assumption* (contact groups 17 and 20): contact group 17 (self-supporting, not employed) and
20 (employed) do not by themselves imply a programme, so a case of an unknown case type in those
groups is not archived. A case in those groups whose case type marks a programme or course IS
archived: the obligation attaches to the programme case of a person covered by §2 of the
integration act (R9.1), not to the person's benefit status, and the archive guidance says cases
are separated by case type / KLE marking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from processors.events import DataArea
from processors.model import CaseState, CitizenState, deterministic_id

__all__ = [
    "CASE_TYPES",
    "CONTACT_GROUP_CASE_TYPES",
    "UNTYPED_CASE",
    "ArchivedCase",
    "CaseTypeRule",
    "PackageContent",
    "build_package_content",
    "is_archived",
    "marking_of",
    "package_id_for",
    "programme_of",
]


@dataclass(frozen=True, slots=True)
class CaseTypeRule:
    """Whether cases of one case type are archived, and the programme they belong to (R9.1-R9.3)."""

    archived: bool
    programme: str
    legal_basis: str


CASE_TYPES: Mapping[str, CaseTypeRule] = MappingProxyType(
    {
        # R9.1: programme (chapter 4) and course (chapter 4a) cases.
        "INTEGRATION_PROGRAMME": CaseTypeRule(True, "introduction programme", "integration act chapter 4"),
        "SELF_SUPPORT_AND_RETURN_PROGRAMME": CaseTypeRule(
            True, "self-support and return programme", "integration act chapter 4"
        ),
        "INTRODUCTION_COURSE": CaseTypeRule(True, "introduction course", "integration act chapter 4a"),
        # R9.2: concrete benefit payments only.
        "SELF_SUPPORT_AND_RETURN_BENEFIT": CaseTypeRule(False, "benefit payment", "integration act"),
        "TRANSITION_BENEFIT": CaseTypeRule(False, "benefit payment", "integration act"),
        "SPECIAL_CASES_HELP": CaseTypeRule(False, "benefit payment", "active social policy act"),
        "HOUSING_SUPPORT": CaseTypeRule(False, "benefit payment", "housing support act"),
        "CHILD_BENEFIT": CaseTypeRule(False, "benefit payment", "child benefit act"),
    }
)

# R9 *assumption*: the case type of a case published without one (CaseCreated.case_type's
# default, in the Avro schema too). It marks nothing: such a case is archived or not by what its
# contact group implies (CONTACT_GROUP_CASE_TYPES), exactly as a case type the table does not know.
# Until 2025 the default was INTEGRATION_PROGRAMME, which archived every untyped case and kept the
# contact-group policy for 17 and 20 from ever applying; a publisher that means a programme says so.
UNTYPED_CASE = ""

# The case type a contact group (R1.2) implies when the case's own is missing or unknown;
# None: no programme, so not archived.
CONTACT_GROUP_CASE_TYPES: Mapping[int, str | None] = MappingProxyType(
    {
        17: None,  # assumption, see module docstring
        18: "SELF_SUPPORT_AND_RETURN_PROGRAMME",
        19: "INTRODUCTION_COURSE",
        20: None,  # assumption, see module docstring
        27: "INTEGRATION_PROGRAMME",
    }
)


def _implied_type(case: CaseState) -> str | None:
    return case.case_type if case.case_type in CASE_TYPES else CONTACT_GROUP_CASE_TYPES.get(case.contact_group)


def _rule_for(case: CaseState) -> CaseTypeRule | None:
    implied = _implied_type(case)
    return CASE_TYPES[implied] if implied is not None else None


def is_archived(case: CaseState) -> bool:
    """R9.1-R9.2: whether the case must be delivered to the archive before deletion."""
    rule = _rule_for(case)
    return rule is not None and rule.archived


def programme_of(case: CaseState) -> str:
    """R9.3: the programme an archived case is marked with."""
    rule = _rule_for(case)
    return rule.programme if rule is not None else "none"


def marking_of(case: CaseState) -> str:
    """R9.3: the case type an archived case carries: its own, or for an untyped case the one its
    contact group implies, so no archived case goes without a marking."""
    return case.case_type or _implied_type(case) or UNTYPED_CASE


def package_id_for(citizen_key: str, date_of_death: date) -> str:
    """Deterministic package id: a repeated delivery carries the same id (R7.2). Never a CPR."""
    return deterministic_id("archive-package", citizen_key, date_of_death.isoformat())


@dataclass(frozen=True, slots=True)
class ArchivedCase:
    """One case as it goes into the package; carries case type and programme (R9.3)."""

    case_id: str
    case_type: str
    programme: str
    legal_basis: str
    contact_group: int
    receiving_municipality: str
    jobcenter_municipality: str
    handover_date: date
    cv_takeover_date: date
    contract_takeover_date: date
    cv_update_deadline: date
    contract_concluded_on: date | None
    last_follow_up_on: date | None
    goals_met: bool
    data_areas: tuple[DataArea, ...]

    @property
    def dates(self) -> tuple[date, ...]:
        candidates = (
            self.handover_date,
            self.cv_takeover_date,
            self.contract_takeover_date,
            self.contract_concluded_on,
            self.last_follow_up_on,
        )
        return tuple(d for d in candidates if d is not None)


@dataclass(frozen=True, slots=True)
class PackageContent:
    """A self-contained archival package's content (R9.4). ``cpr`` identifies whose cases these
    are for the archive; it goes into the payload only, never into names or package metadata."""

    package_id: str
    citizen_key: str
    cpr: str | None
    date_of_death: date
    cases: tuple[ArchivedCase, ...]

    @property
    def case_types(self) -> tuple[str, ...]:
        return tuple(sorted({c.case_type for c in self.cases}))

    @property
    def programmes(self) -> tuple[str, ...]:
        return tuple(sorted({c.programme for c in self.cases}))

    @property
    def period(self) -> tuple[date, date]:
        """First and last date the package covers; the last is the date of death at the latest."""
        dates = [d for c in self.cases for d in c.dates] + [self.date_of_death]
        return min(dates), max(dates)


def _archived_case(case: CaseState) -> ArchivedCase:
    rule = _rule_for(case)
    assert rule is not None  # only called for archived cases
    return ArchivedCase(
        case_id=case.case_id,
        case_type=marking_of(case),
        programme=rule.programme,
        legal_basis=rule.legal_basis,
        contact_group=case.contact_group,
        receiving_municipality=case.receiving_municipality,
        jobcenter_municipality=case.jobcenter_municipality,
        handover_date=case.handover_date,
        cv_takeover_date=case.cv_takeover_date,
        contract_takeover_date=case.contract_takeover_date,
        cv_update_deadline=case.cv_update_deadline,
        contract_concluded_on=case.contract_concluded_on,
        last_follow_up_on=case.last_follow_up_on,
        goals_met=case.goals_met,
        data_areas=tuple(DataArea),
    )


def build_package_content(state: CitizenState, date_of_death: date) -> PackageContent:
    """The package for a deceased citizen: every archived case (R9.1), in case-id order."""
    cases = tuple(_archived_case(state.cases[k]) for k in sorted(state.cases) if is_archived(state.cases[k]))
    return PackageContent(
        package_id=package_id_for(state.citizen_key, date_of_death),
        citizen_key=state.citizen_key,
        cpr=state.personal.cpr,
        date_of_death=date_of_death,
        cases=cases,
    )
