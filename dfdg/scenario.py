"""The demo's bundled scenario: a seeded, synthetic population and its events over a window of
shifted time. The same seed and sizes always give the same events (ids included), so a demo
run can be repeated and compared. Every CPR is synthetic: a random date and sequence number
that belong to no one.

Each ``Step`` happens at an instant of shifted time; the demo publishes it when the worker's
shifted clock reaches that instant. A few steps are *bad on purpose* (an undecodable body,
an invalid CPR, an unknown municipality, contact group 99, contracts without a goal) so the
dead-letter topic has something to show.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dfdg.jsonio import to_jsonable
from processors.events import (
    AbsenceDeleted,
    AbsenceRegistered,
    AbsenceType,
    CaseCreated,
    CitizenDeceased,
    ContractConcluded,
    Event,
    FollowUpHeld,
    JobseekerRegistered,
    ReferralRecordEnded,
    ScreeningResultMade,
    topic_for,
)

__all__ = ["CPR_YEARS", "DEFAULT_START", "Scenario", "Step", "build_scenario", "subscriber_directory",
           "synthetic_cpr", "write_scenario"]

LOCAL = ZoneInfo("Europe/Copenhagen")
DEFAULT_START = datetime(2026, 3, 1, 0, 0, tzinfo=LOCAL)
PRODUCER = "dfdg-demo"
_SUBSCRIBERS = Path(__file__).resolve().parent.parent / "config" / "subscribers.json"
_ABSENCE_TYPES = (AbsenceType.HOLIDAY, AbsenceType.SICKNESS, AbsenceType.PARENTAL_LEAVE,
                  AbsenceType.EXEMPT_FROM_AVAILABILITY)
_JOBS = ("Lagermedarbejder", "Rengøringsassistent", "Kok", "Buschauffør", "Social- og sundhedshjælper",
         "Tømrer", "Butiksassistent", "Pædagogmedhjælper")
_FIRST = ("Amina", "Omar", "Sara", "Yusuf", "Lina", "Ali", "Hana", "Karim", "Mette", "Jens", "Noor", "Ahmad")
_LAST = ("Hansen", "Nielsen", "Haddad", "Rahimi", "Jensen", "Mohammadi", "Pedersen", "Yilmaz", "Karimi")


@dataclass(frozen=True)
class Step:
    """One thing to publish at shifted instant ``at``: a typed event, or raw bytes on a topic.

    ``bypass_check`` sends the event without the client's validation so the pipeline's own
    door gets to refuse it (the bad-on-purpose events)."""

    at: datetime
    event: Event | None = None
    raw_topic: str | None = None
    raw_value: bytes = b""
    bypass_check: bool = False
    label: str = ""


@dataclass(frozen=True)
class Scenario:
    start: datetime
    days: int
    steps: tuple[Step, ...]
    cprs: tuple[str, ...] = field(repr=False)  # every CPR that appears, so the demo can derive citizen keys


def subscriber_directory(path: Path = _SUBSCRIBERS) -> tuple[list[str], list[str]]:
    """The municipalities and a-kasse funds that have subscribers in ``config/subscribers.json``."""
    ids = [s["id"] for s in json.loads(path.read_text())["subscribers"]]
    municipalities = sorted({i.split(":")[1] for i in ids if i.startswith("jobcenter:")})
    funds = sorted({i.split(":")[1] for i in ids if i.startswith("akasse:")}, key=int)
    return municipalities or ["101"], funds or ["5"]


# The years a CPR number can encode, and for each span the 7th digits used here for it: each digit
# maps the two-digit year back to this century under ``processors.validation.cpr_birth_date``
# (0-3: 1900s; 4 and 9: 2000-2036, else 1900s; 5-8: 2000-2057, else 1800s). 1937-1999 could also
# take 4 or 9 and 2000-2036 also 5-8; the subsets kept are the ones earlier versions drew from,
# so a seed still gives the same CPR numbers.
_CPR_CENTURY_DIGITS = ((1858, 1899, "5678"), (1900, 1999, "0123"), (2000, 2036, "49"), (2037, 2057, "5678"))
CPR_YEARS = (_CPR_CENTURY_DIGITS[0][0], _CPR_CENTURY_DIGITS[-1][1])
# Born 1960-2004: all adults (R1.5, at least 15) on every date of the default scenario.
_BORN_FROM, _BORN_TO = date(1960, 1, 1), date(2004, 12, 31)


def synthetic_cpr(rng: random.Random, born_from: date = _BORN_FROM, born_to: date = _BORN_TO) -> str:
    """A valid CPR number that belongs to no one: a random birth date in ``[born_from, born_to)``
    (``born_to`` itself excluded), the 7th digit that gives that date's century back, and a random
    sequence number. Modulus 11 is not kept (nor checked by the pipeline).

    Raises ``ValueError`` when the range is empty or reaches outside the years in ``CPR_YEARS``.
    """
    days = (born_to - born_from).days
    last = born_to - timedelta(days=1)
    if days <= 0 or born_from.year < CPR_YEARS[0] or last.year > CPR_YEARS[1]:
        raise ValueError(f"a synthetic CPR needs a non-empty birth range within {CPR_YEARS[0]}-{CPR_YEARS[1]}")
    born = born_from + timedelta(days=rng.randrange(days))
    digits = next(d for first, end, d in _CPR_CENTURY_DIGITS if first <= born.year <= end)
    return f"{born:%d%m}{born.year % 100:02d}{rng.choice(digits)}{rng.randrange(1000):03d}"


class _Builder:
    def __init__(self, rng: random.Random, start: datetime, days: int) -> None:
        self.rng, self.start, self.days = rng, start, days
        self.end = start + timedelta(days=days)
        self.steps: list[Step] = []

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def at(self, day: float) -> datetime:
        return self.start + timedelta(days=day)

    def add(self, when: datetime, cls: type[Event], bypass: bool = False, label: str = "", **fields: object) -> None:
        if when >= self.end - timedelta(hours=1):
            return  # beyond the demo's window: it would never be published
        event = cls(event_id=self.uid(), occurred_at=when, producer=PRODUCER, **fields)  # type: ignore[arg-type]
        self.steps.append(Step(when, event, bypass_check=bypass, label=label or cls.__name__))


def _local_date(when: datetime) -> date:
    return when.astimezone(LOCAL).date()


def build_scenario(citizens: int = 300, days: int = 120, seed: int = 2026,
                   start: datetime = DEFAULT_START) -> Scenario:
    """The bundled scenario: ``citizens`` synthetic people over ``days`` days from ``start``."""
    rng = random.Random(seed)
    municipalities, funds = subscriber_directory()
    b = _Builder(rng, start, days)
    cprs: list[str] = []
    seen: set[str] = set()
    # Registrations and cases come in the first ~third of the window so their deadlines fall inside it.
    intake_days = max(min(days / 3, 40), 1)
    for _ in range(citizens):
        cpr = synthetic_cpr(rng)
        while cpr in seen:
            cpr = synthetic_cpr(rng)
        seen.add(cpr)
        cprs.append(cpr)
        _citizen(b, cpr, rng.choice(municipalities), rng.choice(funds) if rng.random() < 0.65 else None,
                 intake_days)
    _bad(b, rng)
    steps = tuple(sorted(b.steps, key=lambda s: s.at))
    return Scenario(start, days, steps, tuple(cprs))


def _citizen(b: _Builder, cpr: str, municipality: str, fund: str | None, intake_days: float) -> None:
    rng = b.rng
    registered = b.at(rng.uniform(0.05, intake_days))
    b.add(registered, JobseekerRegistered, cpr=cpr, name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
          registration_date=_local_date(registered), municipality=municipality,
          benefit_category=rng.choice(["dagpenge", "kontanthjælp", "selvforsørgelses- og hjemrejseydelse"]),
          unemployment_degree=rng.choice([1.0, 1.0, 0.5]), job_titles=tuple(rng.sample(_JOBS, 2)), akasse=fund)
    if rng.random() < 0.6:
        _case(b, cpr, municipality, registered + timedelta(hours=rng.uniform(1, 72)))
    if rng.random() < 0.45:
        _absence(b, cpr, municipality, fund, registered + timedelta(days=rng.uniform(1, b.days / 2)))
    if rng.random() < 0.04:
        _record(b, cpr, registered)
    if rng.random() < 0.03:
        b.add(b.at(rng.uniform(b.days * 0.55, b.days * 0.9)), CitizenDeceased, cpr=cpr,
              date_of_death=_local_date(b.at(b.days * 0.5)))


def _case(b: _Builder, cpr: str, municipality: str, created: datetime) -> None:
    rng = b.rng
    handover = _local_date(created) + timedelta(days=rng.randint(3, 60))
    early = rng.random() < 0.4
    early_cv = handover - timedelta(days=rng.randint(1, 10)) if early else None
    early_contract = handover - timedelta(days=rng.randint(1, 10)) if early and rng.random() < 0.7 else None
    floor = _local_date(created) + timedelta(days=1)
    case_id = f"case-{b.uid()[:8]}"
    b.add(created, CaseCreated, cpr=cpr, case_id=case_id, receiving_municipality=municipality,
          jobcenter_municipality=municipality if rng.random() < 0.85 else "101",
          contact_group=rng.choice([17, 18, 19, 20, 27]), handover_date=handover,
          early_cv_takeover_date=max(early_cv, floor) if early_cv else None,
          early_contract_takeover_date=max(early_contract, floor) if early_contract else None,
          cv_number=f"CV{rng.randrange(10**6):06d}" if rng.random() < 0.5 else None,
          case_type=rng.choice(["INTEGRATION_PROGRAMME", "INTRODUCTION_PROGRAMME", "INTRODUCTION_COURSE"]))
    if rng.random() < 0.6:
        concluded = datetime.combine(handover, time(10), tzinfo=LOCAL) + timedelta(days=rng.randint(0, 25))
        goal = rng.random() >= 0.12  # some arrive without a goal: rejected (R5.2)
        b.add(concluded, ContractConcluded, label="ContractConcluded" if goal else "ContractConcluded (no goal)",
              cpr=cpr, case_id=case_id, concluded_date=_local_date(concluded),
              employment_goal=rng.choice(["Job som kok", "Job i lager"]) if goal else None,
              education_goal="Dansk 3" if goal and rng.random() < 0.4 else None)
        if goal and rng.random() < 0.7:
            held = concluded + timedelta(days=rng.randint(20, 80))
            b.add(held, FollowUpHeld, cpr=cpr, case_id=case_id, held_date=_local_date(held),
                  goals_met=rng.random() < 0.2)


def _absence(b: _Builder, cpr: str, municipality: str, fund: str | None, registered: datetime) -> None:
    rng = b.rng
    kind = rng.choice(_ABSENCE_TYPES)
    start = _local_date(registered) + timedelta(days=rng.randint(-3, 10))
    end = start + timedelta(days=rng.randint(3, 30)) if rng.random() < 0.7 else None
    absence_id = f"abs-{b.uid()[:8]}"
    registrar = f"akasse:{fund}" if fund and rng.random() < 0.4 else f"jobcenter:{municipality}"
    b.add(registered, AbsenceRegistered, cpr=cpr, absence_id=absence_id, absence_type=kind, start_date=start,
          end_date=end, registered_by=registrar)
    if rng.random() < 0.5:
        # Deleted once it has started (R6.2: historical or current absences may be deleted too).
        deleted = datetime.combine(start, time(9), tzinfo=LOCAL) + timedelta(days=rng.randint(0, 15))
        by = f"akasse:{fund}" if fund and rng.random() < 0.5 else f"jobcenter:{municipality}"
        b.add(max(deleted, registered + timedelta(hours=1)), AbsenceDeleted, cpr=cpr, absence_id=absence_id,
              absence_type=kind, start_date=start, end_date=end, deleted_by=by, akasse=fund,
              municipality=municipality)


def _record(b: _Builder, cpr: str, registered: datetime) -> None:
    rng = b.rng
    at = registered + timedelta(hours=2)
    # Ended ~2 years ago / made ~6 months ago, so their retention runs out inside the window (R8).
    b.add(at, ReferralRecordEnded, cpr=cpr, record_id=f"ref-{b.uid()[:8]}",
          ended_date=_local_date(b.start) - timedelta(days=730 - rng.randint(5, max(b.days - 20, 6))))
    b.add(at, ScreeningResultMade, cpr=cpr, result_id=f"scr-{b.uid()[:8]}",
          made_date=_local_date(b.start) - timedelta(days=182 - rng.randint(5, max(b.days - 20, 6))),
          score=rng.randint(0, 100))


def _bad(b: _Builder, rng: random.Random) -> None:
    """The bad-on-purpose events: each must end up on the dead-letter topic."""
    b.steps.append(Step(b.at(1.5), raw_topic=topic_for(CaseCreated), raw_value=b"{not avro: true}",
                        label="malformed bytes"))
    b.add(b.at(2.0), JobseekerRegistered, bypass=True, label="invalid CPR", cpr="3213991234", name="Test Person",
          registration_date=_local_date(b.at(2.0)), municipality="101", benefit_category="dagpenge",
          unemployment_degree=1.0)
    good = synthetic_cpr(rng)
    b.add(b.at(2.5), CaseCreated, bypass=True, label="unknown municipality", cpr=good, case_id="case-bad-muni",
          receiving_municipality="999", jobcenter_municipality="999", contact_group=17,
          handover_date=_local_date(b.at(20)))
    b.add(b.at(3.0), CaseCreated, bypass=True, label="contact group 99", cpr=good, case_id="case-bad-group",
          receiving_municipality="101", jobcenter_municipality="101", contact_group=99,
          handover_date=_local_date(b.at(20)))


def write_scenario(scenario: Scenario, path: Path) -> int:
    """Write the scenario as JSON lines (``at``, ``type``, ``event`` or ``raw_topic``/``raw_hex``); returns lines."""
    with path.open("w", encoding="utf-8") as out:
        for line in _lines(scenario.steps):
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(scenario.steps)


def _lines(steps: Iterable[Step]) -> Iterable[dict[str, object]]:
    for s in steps:
        if s.event is None:
            yield {"at": s.at.isoformat(), "label": s.label, "raw_topic": s.raw_topic, "raw_hex": s.raw_value.hex()}
        else:
            yield {"at": s.at.isoformat(), "label": s.label, "bypass_check": s.bypass_check,
                   "type": topic_for(type(s.event)).removeprefix("dfdg."), "event": to_jsonable(s.event)}
