"""Policy data for the case lifecycle (R1-R5): periods, which date closes which data area,
what opens when, and the notice kinds. Data, not logic, so a choice changes in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from types import MappingProxyType

from processors import reference
from processors.events import CaseCreated, DataArea
from processors.model import CaseState

__all__ = [
    "AREA_CLOSES_ON",
    "CONTRACT_DUE_DAYS",
    "CV_UPDATE_DEFAULT_DAYS",
    "E306_CASE_ALREADY_EXISTS",
    "FOLLOW_UP_MONTHS",
    "KIND_CASE_CREATED",
    "KIND_CONTRACT_OVERDUE",
    "KIND_CV_RESPONSIBILITY_MOVED",
    "KIND_FOLLOW_UP_OVERDUE",
    "KIND_HANDOVER_DATE_PASSED",
    "KIND_JOBNET_PROFILE_REQUESTED",
    "OPENINGS",
    "RULE_CONTRACT_DUE",
    "RULE_CV_RESPONSIBILITY",
    "RULE_DATA_AREA_CLOSES",
    "RULE_FOLLOW_UP",
    "RULE_HANDOVER",
    "RULE_OPENS",
    "TASK_ISSUE_JOBNET_LOGIN_CODES",
    "AreaClosing",
    "Opening",
    "area_rule",
]

# R1.4: default CV update deadline, days after the early CV takeover date (or handover date).
CV_UPDATE_DEFAULT_DAYS = 60
# R5.1: the contract must be concluded within this many days of the handover date.
CONTRACT_DUE_DAYS = 30
# R5.3: follow-up at least this often (months) until the goals are met.
FOLLOW_UP_MONTHS = 3

# Deadline rule prefixes (the part of Deadline.rule before ':').
RULE_DATA_AREA_CLOSES = "R2.1"
RULE_OPENS = "R2.4"
RULE_HANDOVER = "R3.1"
RULE_CV_RESPONSIBILITY = "R4.1"
RULE_CONTRACT_DUE = "R5.1"
RULE_FOLLOW_UP = "R5.3"

KIND_CASE_CREATED = "case-created"
KIND_JOBNET_PROFILE_REQUESTED = "jobnet-profile-requested"
KIND_HANDOVER_DATE_PASSED = "handover-date-passed"
KIND_CV_RESPONSIBILITY_MOVED = "cv-responsibility-moved"
KIND_CONTRACT_OVERDUE = "contract-overdue"
KIND_FOLLOW_UP_OVERDUE = "follow-up-overdue"
TASK_ISSUE_JOBNET_LOGIN_CODES = "issue-jobnet-login-codes"

# Re-creating a known case with other facts (the code table lives in processors.reference).
E306_CASE_ALREADY_EXISTS = reference.E306_CASE_ALREADY_EXISTS

@dataclass(frozen=True, slots=True)
class AreaClosing:
    """R2.2: which of the case's dates closes a data area, and its name in refusal reasons."""

    date_name: str
    date_of: Callable[[CaseState], date]


# R2.2: the date whose passing closes each data area. Other information and attachments
# close on the handover date (*assumption*, DOMAIN.md R2.2).
AREA_CLOSES_ON: Mapping[DataArea, AreaClosing] = MappingProxyType({
    DataArea.CV: AreaClosing("CV takeover date", lambda case: case.cv_takeover_date),
    DataArea.INTEGRATION_CONTRACT: AreaClosing("contract takeover date", lambda case: case.contract_takeover_date),
    DataArea.OTHER_INFORMATION: AreaClosing("handover date", lambda case: case.handover_date),
    DataArea.ATTACHMENTS: AreaClosing("handover date", lambda case: case.handover_date),
})


def area_rule(area: DataArea) -> str:
    """The deadline rule that closes ``area`` (``"R2.1:CV"`` ...)."""
    return f"{RULE_DATA_AREA_CLOSES}:{area.value}"


@dataclass(frozen=True, slots=True)
class Opening:
    """R2.4: something that opens on the early takeover date if given, else when the handover
    date has passed. ``is_open``/``mark_open`` read and set the CaseState flag that records it."""

    key: str  # suffix of the deadline rule: "R2.4:<key>"
    notice_kind: str
    early_date: Callable[[CaseCreated], date | None]
    is_open: Callable[[CaseState], bool]
    mark_open: Callable[[CaseState], CaseState]

    @property
    def rule(self) -> str:
        return f"{RULE_OPENS}:{self.key}"


OPENINGS: tuple[Opening, ...] = (
    Opening(
        "CV",
        "cv-creation-open",
        early_date=lambda e: e.early_cv_takeover_date,
        is_open=lambda c: c.cv_creation_open,
        mark_open=lambda c: replace(c, cv_creation_open=True),
    ),
    Opening(
        "CONTRACT",
        "contract-formation-open",
        early_date=lambda e: e.early_contract_takeover_date,
        is_open=lambda c: c.contract_formation_open,
        mark_open=lambda c: replace(c, contract_formation_open=True),
    ),
)
