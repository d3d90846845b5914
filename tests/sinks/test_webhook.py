"""Webhook delivery against a real aiohttp server on 127.0.0.1 (random port)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from processors.subscribers import Registry
from sinks import registry_store
from sinks.webhook import Outcome, WebhookDispatcher, WebhookEndpoint, WebhookMessage, disable_in_registry
from sinks.webhook_retry import MAX_BACKOFF_SECONDS, RetryPolicy, parse_retry_after
from sinks.webhook_store import FailedDeliveryStore
from tests.webhook_receiver import SECRET, Receiver

FAST = RetryPolicy(base_delay=1.0, jitter=0.0, max_attempts=8)




class Sleeps:
    """Injected sleep: records the asked delay, sleeps a hundredth of it."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(seconds / 100)


def msg(nid: str, citizen: str) -> WebhookMessage:
    return WebhookMessage.from_payload(nid, citizen, {"notification_id": nid, "kind": "absence-deleted",
                                                      "citizen_key": citizen, "cpr": "0101901234"})


def dispatcher(rec: Receiver, tmp_path: Path, sleeps: Sleeps, **kw: object) -> WebhookDispatcher:
    store = FailedDeliveryStore(tmp_path / "held", "jobcenter:101")
    kw.setdefault("policy", FAST)
    return WebhookDispatcher(WebhookEndpoint("jobcenter:101", rec.url, SECRET), store,  # type: ignore[arg-type]
                             sleep=sleeps, rng=random.Random(1), **kw)


async def test_every_notification_arrives_once_signed_in_order_and_one_citizen_does_not_hold_another(
        receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = {
        "a1": [(500, {}), (503, {}), (502, {})],
        "a2": [(429, {"Retry-After": "7"})],
    }
    sleeps = Sleeps()
    d = dispatcher(receiver, tmp_path, sleeps)
    futures = [d.send(msg(n, c)) for n, c in (("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("c1", "C"))]
    outcomes = await asyncio.gather(*futures)
    await d.close()
    assert outcomes == [Outcome.DELIVERED] * 5
    assert receiver.bad_signatures == []
    assert Counter(receiver.accepted) == Counter({"a1": 1, "a2": 1, "b1": 1, "b2": 1, "c1": 1})
    order = receiver.accepted
    assert order.index("a1") < order.index("a2")  # per-citizen FIFO
    assert order.index("b2") < order.index("a1") and order.index("c1") < order.index("a1")  # A's failure holds only A
    assert receiver.attempts["a1"] == 4 and receiver.attempts["a2"] == 2
    assert sleeps.asked[:3] == [1.0, 2.0, 4.0]  # exponential backoff
    assert 7.0 in sleeps.asked  # Retry-After honoured
    assert len(d.store) == 0


async def test_410_gone_disables_the_endpoint_holds_everything_and_replay_delivers_in_order(
        receiver: Receiver, tmp_path: Path) -> None:
    reg_file = tmp_path / "subscribers.json"
    registry_store.save(Registry().add("jobcenter:101", "http://127.0.0.1/hook", "env:X"), reg_file)
    receiver.script = {"x1": [(410, {})]}
    d = dispatcher(receiver, tmp_path, Sleeps(), on_gone=disable_in_registry(reg_file))
    first = await d.send(msg("x1", "X"))
    later = await asyncio.gather(d.send(msg("x2", "X")), d.send(msg("y1", "Y")))
    assert (first, later) == (Outcome.HELD, [Outcome.HELD, Outcome.HELD])
    assert d.disabled and registry_store.load(reg_file)["jobcenter:101"].state == "disabled"
    assert [e.notification_id for e in d.store.entries()] == ["x1", "x2", "y1"]
    assert all("0101901234" not in p.name for p in (tmp_path / "held").iterdir())

    assert await d.replay() == 3
    await d.flush()
    assert receiver.accepted.index("x1") < receiver.accepted.index("x2")
    assert Counter(receiver.accepted) == Counter({"x1": 1, "x2": 1, "y1": 1})
    assert len(d.store) == 0 and not d.disabled
    await d.close()


async def test_refused_message_parks_its_citizen_only_and_survives_a_restart(
        receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = {"p1": [(400, {})]}
    d = dispatcher(receiver, tmp_path, Sleeps())
    assert await d.send(msg("p1", "P")) is Outcome.HELD
    assert await d.send(msg("p2", "P")) is Outcome.HELD  # behind p1, never ahead of it
    assert await d.send(msg("q1", "Q")) is Outcome.DELIVERED
    await d.close()
    # A new dispatcher on the same store still keeps P parked, then replays in order.
    d2 = dispatcher(receiver, tmp_path, Sleeps())
    assert await d2.send(msg("p3", "P")) is Outcome.HELD
    await d2.replay()
    await d2.flush()
    assert receiver.accepted == ["q1", "p1", "p2", "p3"]
    await d2.close()


async def test_retries_exhausted_are_held_not_dropped(receiver: Receiver, tmp_path: Path) -> None:
    receiver.default = 503
    sleeps = Sleeps()
    d = dispatcher(receiver, tmp_path, sleeps)
    assert await d.send(msg("z1", "Z")) is Outcome.HELD
    assert receiver.attempts["z1"] == FAST.max_attempts
    (entry,) = d.store.entries()
    assert entry.notification_id == "z1" and "gave up" in entry.reason
    await d.close()


async def test_unreachable_endpoint_is_retried(tmp_path: Path) -> None:
    rec = Receiver(url="http://127.0.0.1:9/hook")  # discard port: connection refused
    d = dispatcher(rec, tmp_path, Sleeps(), policy=RetryPolicy(base_delay=1.0, max_attempts=3))
    assert await d.send(msg("u1", "U")) is Outcome.HELD
    assert "no answer" in d.store.entries()[0].reason
    await d.close()


def test_backoff_is_capped_at_three_hours_with_jitter() -> None:
    policy = RetryPolicy()
    rng = random.Random(3)
    delays = [policy.backoff(n, rng) for n in range(1, 40)]
    assert max(delays) <= MAX_BACKOFF_SECONDS == 3 * 3600
    assert delays[-1] == MAX_BACKOFF_SECONDS and 5.0 <= delays[0] <= 6.0
    assert policy.honour(10 * 86400) == MAX_BACKOFF_SECONDS


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2024, 5, 10, 6, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
