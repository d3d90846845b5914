"""What the citizen step seals into a notification's personal part (docs/security.md): the CPR
the recipient needs and the notice's own personal fields (R8.2's score), never clear details."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

from processors.events import DeadlineDue, ScreeningResultMade
from processors.model import CitizenState, PersonalData
from processors.pipeline import Delivery, Outcome, process
from streams.citizen_repo import Citizen
from streams.citizen_step import CitizenStep
from tests.synthetic import synthetic_cpr

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
CPR = synthetic_cpr(__import__("random").Random("r8-2-sealed-score"))


class Sealer:
    def __init__(self) -> None:
        self.sealed: list[tuple[str, dict[str, str]]] = []

    async def seal_personal(self, citizen: str, recipient: str, notification_id: str,
                            personal: dict[str, str], published: set[str]) -> bytes:
        self.sealed.append((recipient, dict(personal)))
        return b"sealed"


class Outputs:
    def __init__(self) -> None:
        self.sent: list[tuple[Delivery, bytes | None]] = []

    async def notify(self, delivery: Delivery, state: CitizenState, now: datetime, personal: bytes | None) -> None:
        self.sent.append((delivery, personal))


class Metrics:
    def event_out(self, kind: str) -> None:
        pass


def _fired(score: int | None, cpr: str | None) -> Outcome:
    state = CitizenState(citizen_key="c" * 64, personal=PersonalData(cpr=cpr))
    made = process(state, ScreeningResultMade(event_id="ev-1", occurred_at=NOW, producer="jobnet", cpr=CPR,
                                              result_id="scr-1", made_date=date(2023, 8, 31), score=score), NOW)
    (deadline,) = made.decision.set_deadlines
    due = DeadlineDue(event_id="due-1", occurred_at=NOW, producer="deadlines", deadline_id=deadline.deadline_id,
                      rule=deadline.rule, due_date=deadline.due_date, case_id=deadline.case_id)
    return process(made.state, due, NOW)


def _emit(outcome: Outcome) -> tuple[Sealer, Outputs]:
    sealer, outputs = Sealer(), Outputs()
    none: Any = None
    step = CitizenStep(none, sealer, none, outputs, none, none, none, Metrics(), none, "", none)  # type: ignore[arg-type]
    citizen = Citizen("c" * 64, 0, outcome.state)
    asyncio.run(step._emit(None, citizen, outcome, NOW))
    return sealer, outputs


def test_r8_2_statistics_get_the_score_sealed_with_the_cpr_not_in_clear_details() -> None:
    sealer, outputs = _emit(_fired(score=57, cpr=CPR))
    [(delivery, personal)] = outputs.sent
    assert delivery.recipient == "statistics:star" and personal == b"sealed"
    assert sealer.sealed == [("statistics:star", {"cpr": CPR, "score": "57"})]
    assert "score" not in delivery.notice.details and "57" not in delivery.notice.details.values()


def test_r8_2_the_score_is_sealed_even_when_the_citizen_has_no_cpr_kept() -> None:
    sealer, outputs = _emit(_fired(score=57, cpr=None))
    [(_, personal)] = outputs.sent
    assert personal == b"sealed" and sealer.sealed == [("statistics:star", {"score": "57"})]


def test_r8_2_a_missing_score_is_not_sealed_as_a_value() -> None:
    sealer, outputs = _emit(_fired(score=None, cpr=CPR))
    [(delivery, _)] = outputs.sent
    assert sealer.sealed == [("statistics:star", {"cpr": CPR})] and "score" not in delivery.notice.details
