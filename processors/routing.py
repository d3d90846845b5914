"""Who is told what: the routing table (notice kind -> audience) and subscriber ids/topics.

The table is data: to route a new kind, add one line to ``ROUTES``. An audience is made of
*relations* of the citizen, resolved against the citizen's state, plus fixed subscribers:

- ``AKASSE``: ``akasse:<fund>``, the fund in ``notice.details["akasse"]`` if the cause named
  one, else ``state.akasse`` (R10); absent when the citizen is not a member.
- ``BENEFITS`` / ``JOBCENTER``: ``benefits:<m>`` / ``jobcenter:<m>`` where ``m`` is
  ``notice.municipality`` (e.g. the receiving municipality, R3.1) or else ``state.municipality``.
- ``TOLD``: every subscriber already told something about the citizen (``state.notified``).

A subscriber sees only what is addressed to it (seed 003 §10, §13): recipients are derived
from the citizen's relations only, the acting subscriber is never echoed (R6.3), and after
death only the kinds in ``POST_MORTEM_KINDS`` go out (R7.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from processors.model import CitizenState, Notice
from processors.reference import MUNICIPALITIES

__all__ = [
    "POST_MORTEM_KINDS",
    "ROLES",
    "ROUTES",
    "TOPIC_PREFIX",
    "InvalidSubscriberId",
    "Relation",
    "Route",
    "UnroutableNotice",
    "parse_subscriber_id",
    "recipients",
    "subscriber_for_topic",
    "topic_for_subscriber",
]

TOPIC_PREFIX = "dfdg.notify"
ROLES: tuple[str, ...] = ("akasse", "benefits", "jobcenter", "archive", "statistics")
_FUND = re.compile(r"[0-9]{1,4}")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


class InvalidSubscriberId(ValueError):
    """A subscriber id that is not ``<role>:<id>`` with a known role and a well-formed id."""


class UnroutableNotice(LookupError):
    """A notice kind with no line in ``ROUTES``: a wiring bug, never silently dropped."""


class Relation(StrEnum):
    """A relation of the citizen that an audience is resolved through."""

    AKASSE = "akasse"
    BENEFITS = "benefits"
    JOBCENTER = "jobcenter"
    TOLD = "told"


@dataclass(frozen=True, slots=True)
class Route:
    """The audience of one notice kind."""

    relations: frozenset[Relation]
    fixed: frozenset[str] = frozenset()


def _route(*relations: Relation, fixed: tuple[str, ...] = ()) -> Route:
    return Route(frozenset(relations), frozenset(fixed))


_JOBCENTER = _route(Relation.JOBCENTER)

ROUTES: Mapping[str, Route] = MappingProxyType({
    "absence-deleted": _route(Relation.AKASSE, Relation.BENEFITS, Relation.JOBCENTER),  # R6.3
    "handover-date-passed": _route(Relation.JOBCENTER, Relation.BENEFITS),  # R3.1, receiving municipality
    "case-created": _JOBCENTER,  # R1.1
    "jobnet-profile-requested": _JOBCENTER,  # R1.6
    "cv-creation-open": _JOBCENTER,  # R2.4
    "contract-formation-open": _JOBCENTER,  # R2.4
    "cv-responsibility-moved": _JOBCENTER,  # R4.1
    "contract-overdue": _JOBCENTER,  # R5.1
    "follow-up-overdue": _JOBCENTER,  # R5.3
    "jobseeker-registered": _route(Relation.JOBCENTER, Relation.AKASSE),  # R10.1
    "jobseeker-deregistered": _route(Relation.JOBCENTER, Relation.AKASSE),  # R10.1
    "screening-result-for-statistics": _route(fixed=("statistics:star",)),  # R8.2
    "citizen-deceased": _route(Relation.TOLD),  # R7
    "citizen-deleted": _route(Relation.TOLD),  # R7
})

# R7.3: after death, only notices reporting the death and the deletion go out.
POST_MORTEM_KINDS: frozenset[str] = frozenset({"citizen-deceased", "citizen-deleted"})


def _resolve(relation: Relation, notice: Notice, state: CitizenState) -> frozenset[str]:
    municipality = notice.municipality or state.municipality
    if relation is Relation.AKASSE:
        fund = notice.details.get("akasse") or state.akasse
        return frozenset({f"akasse:{fund}"}) if fund else frozenset()
    if relation is Relation.TOLD:
        return state.notified
    return frozenset({f"{relation.value}:{municipality}"}) if municipality else frozenset()


def recipients(notice: Notice, state: CitizenState) -> tuple[str, ...]:
    """Subscriber ids that must receive ``notice`` about the citizen in ``state``, sorted.

    A relation the citizen lacks (no a-kasse, no known municipality) contributes nobody;
    ``notice.exclude`` (the acting subscriber) is removed. Raises ``UnroutableNotice`` for
    a kind missing from ``ROUTES``.
    """
    try:
        route = ROUTES[notice.kind]
    except KeyError:
        raise UnroutableNotice(f"no route for notice kind {notice.kind!r}") from None
    if state.deceased_on is not None and notice.kind not in POST_MORTEM_KINDS:
        return ()
    found: set[str] = set(route.fixed)
    for relation in route.relations:
        found |= _resolve(relation, notice, state)
    found.discard(notice.exclude or "")
    return tuple(sorted(found))


def parse_subscriber_id(sub_id: str) -> tuple[str, str]:
    """Split and check ``<role>:<id>``: fund numbers are 1-4 digits, municipalities one of
    the 98 official 3-digit codes, archive/statistics ids lower-case names."""
    role, sep, ident = sub_id.partition(":")
    if not sep or role not in ROLES:
        raise InvalidSubscriberId(f"{sub_id!r}: expected <role>:<id> with role in {', '.join(ROLES)}")
    if role == "akasse":
        ok = _FUND.fullmatch(ident) is not None
    elif role in ("benefits", "jobcenter"):
        ok = ident in MUNICIPALITIES
    else:
        ok = _NAME.fullmatch(ident) is not None
    if not ok:
        raise InvalidSubscriberId(f"{sub_id!r}: malformed {role} id {ident!r}")
    return role, ident


def topic_for_subscriber(sub_id: str) -> str:
    """The subscriber's own topic: ``akasse:5`` -> ``dfdg.notify.akasse.5``."""
    role, ident = parse_subscriber_id(sub_id)
    return f"{TOPIC_PREFIX}.{role}.{ident}"


def subscriber_for_topic(topic: str) -> str:
    """Inverse of ``topic_for_subscriber``: ``dfdg.notify.jobcenter.101`` -> ``jobcenter:101``."""
    prefix, _, rest = topic.rpartition(".")
    base, _, role = prefix.rpartition(".")
    if base != TOPIC_PREFIX:
        raise InvalidSubscriberId(f"{topic!r} is not a notification topic")
    sub_id = f"{role}:{rest}"
    parse_subscriber_id(sub_id)
    return sub_id
