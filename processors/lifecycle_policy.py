"""Policy data for the case lifecycle (R1-R5): periods, which date closes which data area,
what opens when, and the notice kinds. Data, not logic, so a choice changes in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from processors import reference
from processors.events import CaseCreated, DataArea
from processors.frozen import replace
from processors.model import CaseState, Deadline

__all__ = [
    "AREA_CLOSES_ON",
    "CONTRACT_DUE_DAYS",
    "CV_UPDATE_DEFAULT_DAYS",
    "E306_CASE_ALREADY_EXISTS",
    "EARLY_OPENING_DAYS_BEFORE",
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
    """R2.2: which of the case's dates closes a data area, and how refusal reasons name it (by
    its CaseCreated fields, never by its value)."""

    date_name: str
    date_of: Callable[[CaseState], date]


# R2.2: the date whose passing closes each data area. Other information and attachments
# close on the handover date (*assumption*, DOMAIN.md R2.2).
AREA_CLOSES_ON: Mapping[DataArea, AreaClosing] = MappingProxyType({
    DataArea.CV: AreaClosing("CV takeover date (early_cv_takeover_date, else handover_date)",
                             lambda case: case.cv_takeover_date),
    DataArea.INTEGRATION_CONTRACT: AreaClosing(
        "contract takeover date (early_contract_takeover_date, else handover_date)",
        lambda case: case.contract_takeover_date),
    DataArea.OTHER_INFORMATION: AreaClosing("handover date (handover_date)", lambda case: case.handover_date),
    DataArea.ATTACHMENTS: AreaClosing("handover date (handover_date)", lambda case: case.handover_date),
})


def area_rule(area: DataArea) -> str:
    """The deadline rule that closes ``area`` (``"R2.1:CV"`` ...)."""
    return f"{RULE_DATA_AREA_CLOSES}:{area.value}"


# R2.4 *assumption*: "opens on the early takeover date" means from 00:00 Europe/Copenhagen on
# that date, the moment the day before it has passed; a deadline fires when its date has passed,
# so the opening's deadline is set this many days before the early date. Without an early date
# the opening waits until the handover date itself has passed (R2.4's "otherwise" branch).
EARLY_OPENING_DAYS_BEFORE = 1


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

    def deadline_for(self, early: date | None, case: CaseState) -> Deadline:
        """The deadline whose passing opens it: the day before the early date, or the handover date.

        The same deadline anchors the notice whether it opens at case creation (early date already
        reached) or later, so the notice id does not depend on which path opened it."""
        if early is None:
            return Deadline(self.rule, case.handover_date, case.case_id)
        return Deadline(self.rule, early - timedelta(days=EARLY_OPENING_DAYS_BEFORE), case.case_id)

    @staticmethod
    def opened_on(deadline: Deadline, case: CaseState) -> date:
        """The date reported as ``opened_on``: the early takeover date, or the handover date.

        An early date is at most the handover date (R1.3), so its deadline is always before the
        handover date and the two are never confused."""
        if deadline.due_date == case.handover_date:
            return case.handover_date
        return deadline.due_date + timedelta(days=EARLY_OPENING_DAYS_BEFORE)


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
