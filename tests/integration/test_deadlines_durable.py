"""Issue 4's "Done when" against the real broker: deadlines survive a SIGKILL, a fresh data dir
(state from the changelog only) and a rebalance between two workers, and every deadline that
comes due fires once and only once as the subscribers see it (R2.1, R2.4, R3.1)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import read_topic
from processors.events import DataArea
from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from schemas.records import DataAreaClosed, Notification
from schemas.topics import DATA_AREA_CLOSED
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

MUNICIPALITIES = ("851", "147")
# Faust reads these from the environment: a SIGKILLed member leaves the group after 6 s, not
# after the default 60 s, so the restart or the survivor gets its partitions quickly.
FAST_REJOIN = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}
CODEC = Codec.default()


@dataclass(frozen=True)
class Citizen:
    cpr: str
    key: str
    case_id: str
    receiving: str
    jobcenter: str
    handover: date
    early: date | None


def _citizens(unique: str, handover: date, n: int, spread_days: int = 1) -> list[Citizen]:
    """``n`` citizens; with ``spread_days`` their handover dates spread over that many days."""
    rng = random.Random(unique)
    out = []
    for i in range(n):
        cpr = synthetic_cpr(rng)
        handover_i = handover + timedelta(days=i % spread_days)
        receiving = MUNICIPALITIES[i % 2]
        # Some cases have early takeover dates (the day before handover), so their CV and
        # contract data areas close on another day than the others.
        early = handover_i - timedelta(days=1) if i % 3 == 1 else None
        out.append(Citizen(cpr, citizen_key(DEV_PSEUDONYM_KEY, cpr), f"case-{unique}-{i}", receiving,
                           MUNICIPALITIES[(i // 2) % 2], handover_i, early))
    return out


async def _publish_cases(bootstrap: str, citizens: Iterable[Citizen], on: date) -> None:
    """Publish the cases, stamped ``on`` the workers' shifted date: the door refuses an occurred_at
    more than a day after the worker's today (processors.bounds), and real time may be months ahead."""
    async with Publisher(bootstrap) as publisher:
        for c in citizens:
            body: dict[str, object] = {
                "cpr": c.cpr, "case_id": c.case_id, "receiving_municipality": c.receiving,
                "jobcenter_municipality": c.jobcenter, "contact_group": 18,
                "handover_date": c.handover.isoformat(), "cv_number": "CV-1",
                "occurred_at": f"{on.isoformat()}T12:00:00+00:00",
            }
            if c.early is not None:
                body["early_cv_takeover_date"] = c.early.isoformat()
                body["early_contract_takeover_date"] = c.early.isoformat()
            await publisher.publish(event_from_json("case-created", body))


async def _read(bootstrap: str, topic: str) -> list[object]:
    return [CODEC.decode(value) async for _, _, value in read_topic(bootstrap, topic, idle_timeout_s=0.5)]


async def _notifications(bootstrap: str, keys: set[str]) -> list[Notification]:
    found: list[Notification] = []
    for role in ("jobcenter", "benefits"):
        for m in MUNICIPALITIES:
            for record in await _read(bootstrap, topic_for_subscriber(f"{role}:{m}")):
                assert isinstance(record, Notification)
                if record.citizen_key in keys:
                    found.append(record)
    return found


async def _closed(bootstrap: str, keys: set[str]) -> list[DataAreaClosed]:
    records = await _read(bootstrap, DATA_AREA_CLOSED)
    return [r for r in records if isinstance(r, DataAreaClosed) and r.citizen_key in keys]


async def _wait_until(check: object, timeout_s: float, what: str, worker_tails: Iterable[WorkerProcess] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.5)
    tails = "\n---\n".join(w.tail() for w in worker_tails)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _handover_passed(notes: list[Notification]) -> list[Notification]:
    return [n for n in notes if n.kind == "handover-date-passed"]


OPENINGS = ("cv-creation-open", "contract-formation-open")


def _openings(notes: list[Notification]) -> list[Notification]:
    return [n for n in notes if n.kind in OPENINGS]


def _expected_handover_recipients(citizens: list[Citizen]) -> set[tuple[str, str]]:
    return {(c.key, f"{role}:{c.receiving}") for c in citizens for role in ("jobcenter", "benefits")}


async def _assert_fired_once(bootstrap: str, citizens: list[Citizen]) -> str:
    """Every due deadline fired once as the subscribers see it; returns a one-line summary."""
    keys = {c.key for c in citizens}
    notes = await _notifications(bootstrap, keys)
    by_fact: dict[tuple[str, str, str], set[str]] = {}
    for n in notes:
        by_fact.setdefault((n.citizen_key, n.kind, n.recipient), set()).add(n.notification_id)
    doubled = {fact: ids for fact, ids in by_fact.items() if len(ids) != 1}
    assert not doubled, f"one fact told under several notification ids: {doubled}"

    handover = _handover_passed(notes)
    assert {(n.citizen_key, n.recipient) for n in handover} == _expected_handover_recipients(citizens)
    distinct_handover = {n.notification_id for n in handover}
    assert len(distinct_handover) == 2 * len(citizens)
    # R2.4: CV creation and contract formation open once each, on the early takeover date when
    # the case has one, else at the handover date; ``opened_on`` says which.
    distinct = {n.notification_id: n for n in notes}.values()
    openings = Counter((n.citizen_key, n.kind) for n in distinct if n.kind in OPENINGS)
    assert openings == {(c.key, kind): 1 for c in citizens for kind in OPENINGS}, openings
    opened_on = {(n.citizen_key, n.details.get("opened_on")) for n in distinct if n.kind in OPENINGS}
    assert opened_on == {(c.key, (c.early or c.handover).isoformat()) for c in citizens}, opened_on

    closed = await _closed(bootstrap, keys)
    distinct_closed = {r.event_id: r for r in closed}
    per_case = Counter((r.citizen_key, r.case_id) for r in distinct_closed.values())
    assert per_case == {(c.key, c.case_id): 4 for c in citizens}
    assert {(r.case_id, r.data_area) for r in distinct_closed.values()} == {
        (c.case_id, area) for c in citizens for area in DataArea}
    return (f"handover-date-passed {len(distinct_handover)} distinct / {len(handover)} total; "
            f"data-area-closed {len(distinct_closed)} distinct / {len(closed)} total")


def _now_env(when: date, **extra: str) -> dict[str, str]:
    return {"DFDG_NOW": f"{when.isoformat()}T12:00", **FAST_REJOIN, **extra}


@pytest.mark.parametrize("fresh_data_dir", [False, True], ids=["same-data-dir", "fresh-data-dir"])
async def test_r3_1_deadlines_fire_once_after_sigkill(bootstrap: str, unique: str, tmp_path: Path,
                                                      fresh_data_dir: bool) -> None:
    handover = date(2026, 9, 15)
    citizens = _citizens(unique, handover, 5)
    keys = {c.key for c in citizens}
    app_id = f"dfdg-deadlines-{unique}"
    before = WorkerProcess(bootstrap, app_id, tmp_path / "first", _now_env(handover - timedelta(days=2))).start()
    workers = [before]
    try:
        await _publish_cases(bootstrap, citizens, handover - timedelta(days=2))

        async def all_created() -> bool:
            notes = await _notifications(bootstrap, keys)
            return {n.citizen_key for n in notes if n.kind == "case-created"} == keys

        await _wait_until(all_created, 60, "case-created notifications", workers)
        # Let the table rows reach the changelog (the worker flushes about once a second).
        await asyncio.sleep(2.0)
        told = await _notifications(bootstrap, keys)
        assert not _handover_passed(told), "fired before its time"
        # R2.4: an early takeover date (the day before handover) is still ahead: nothing opens yet.
        assert not _openings(told), "an area opened before its early takeover date"
        before.kill()  # a crash while every handover deadline is still pending

        after_dir = tmp_path / ("fresh" if fresh_data_dir else "first")
        after = WorkerProcess(bootstrap, app_id, after_dir, _now_env(handover + timedelta(days=3))).start(restart=True)
        workers.append(after)

        async def all_handover_told() -> bool:
            told = {(n.citizen_key, n.recipient) for n in _handover_passed(await _notifications(bootstrap, keys))}
            closed = {r.event_id for r in await _closed(bootstrap, keys)}
            return told == _expected_handover_recipients(citizens) and len(closed) == 4 * len(citizens)

        await _wait_until(all_handover_told, 60, "handover-date-passed and data-area-closed", workers)
        # A second crash after firing, then a worker from the changelog only: nothing fires again.
        after.kill()
        again = WorkerProcess(bootstrap, app_id, tmp_path / "third",
                              _now_env(handover + timedelta(days=4))).start(restart=True)
        workers.append(again)
        await asyncio.sleep(4.0)
        summary = await _assert_fired_once(bootstrap, citizens)
        print(f"\n[deadlines {'fresh' if fresh_data_dir else 'same'} dir] {summary}")
    finally:
        for w in workers:
            w.stop()
    log = "\n".join(line for w in workers for line in w.lines)
    assert all(c.cpr not in log for c in citizens), "a CPR appeared in the worker's log"


async def test_r3_1_no_deadline_lost_or_doubled_across_rebalance(bootstrap: str, unique: str,
                                                                 tmp_path: Path) -> None:
    # A fast clock (one day every 5 s) runs through handover dates spread over four days while
    # one of two workers in the group is killed: its partitions, with deadlines still pending,
    # move to the other mid-run.
    start = date(2026, 10, 20)
    citizens = _citizens(unique, start + timedelta(days=1), 12, spread_days=4)
    keys = {c.key for c in citizens}
    app_id = f"dfdg-rebalance-{unique}"
    env = {"DFDG_NOW": f"{start.isoformat()}T00:00", "DFDG_CLOCK_SPEED": str(86400 / 5), **FAST_REJOIN}
    first = WorkerProcess(bootstrap, app_id, tmp_path / "a", env).start()
    second = WorkerProcess(bootstrap, app_id, tmp_path / "b", env).start(restart=True)
    workers = [first, second]
    try:
        first.wait_for("deadline index rebuilt", 60, count=2)  # the rebalance that took in the second
        await _publish_cases(bootstrap, citizens, start)

        async def all_created() -> bool:
            notes = await _notifications(bootstrap, keys)
            return {n.citizen_key for n in notes if n.kind == "case-created"} == keys

        await _wait_until(all_created, 60, "case-created notifications", workers)
        told_before = {n.citizen_key for n in _handover_passed(await _notifications(bootstrap, keys))}
        second.kill()

        async def all_handover_told() -> bool:
            told = {(n.citizen_key, n.recipient) for n in _handover_passed(await _notifications(bootstrap, keys))}
            return told == _expected_handover_recipients(citizens)

        await _wait_until(all_handover_told, 90, "handover-date-passed after the rebalance", workers)
        await asyncio.sleep(3.0)
        summary = await _assert_fired_once(bootstrap, citizens)
        print(f"\n[deadlines rebalance] {len(told_before)} of {len(citizens)} told before the kill; {summary}")
        assert len(told_before) < len(citizens), "every deadline fired before the kill: nothing was moved"
    finally:
        for w in workers:
            w.stop()
