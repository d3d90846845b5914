"""Webhook delivery of notifications to one subscriber, Standard Webhooks style.

Each notification is POSTed as JSON with ``webhook-id`` (the notification id, so the receiver
can drop repeats), ``webhook-timestamp`` and ``webhook-signature`` (see ``webhook_retry``).

Ordering and isolation: messages queue per citizen (``citizen_key``), FIFO. A message being
retried holds back later messages *for the same citizen only*; other citizens flow on. A
message that cannot be delivered (refused, retries exhausted, endpoint gone) is held in the
``FailedDeliveryStore`` and its citizen is *parked*: later messages for that citizen are
held behind it, so ``replay`` re-sends them in their original order. 410 Gone disables the
endpoint (``on_gone`` marks it in the registry) and holds everything until replay.

``send`` returns a future that resolves once the message is delivered or durably held; the
Kafka shell should commit a notification's offset only then (at-least-once; the receiver
deduplicates by ``webhook-id``). Clock, sleep and randomness are injectable for tests.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from sinks import registry_store
from sinks.webhook_retry import RetryPolicy, Verdict, classify, decode_secret, parse_retry_after, sign
from sinks.webhook_store import FailedDelivery, FailedDeliveryStore

__all__ = ["Outcome", "WebhookDispatcher", "WebhookEndpoint", "WebhookMessage", "disable_in_registry"]

log = structlog.get_logger("sinks.webhook")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]
OnGone = Callable[[str], None]


class Outcome(Enum):
    DELIVERED = "delivered"
    HELD = "held"  # in the replay store; nothing is lost


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One notification for one subscriber; ``body`` is sent byte for byte on every attempt."""

    notification_id: str
    citizen_key: str
    body: bytes

    @classmethod
    def from_payload(cls, notification_id: str, citizen_key: str, payload: Mapping[str, Any]) -> WebhookMessage:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return cls(notification_id, citizen_key, body.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """Where and how to deliver: the subscriber id, its URL and its ``whsec_`` secret."""

    subscriber_id: str
    url: str
    secret: str


def disable_in_registry(path: Path | str | None = None) -> OnGone:
    """An ``on_gone`` callback marking the subscriber disabled in the registry file."""

    def disable(sub_id: str) -> None:
        registry_store.update(lambda r: r.disable(sub_id), path)

    return disable


@dataclass(slots=True)
class _Item:
    message: WebhookMessage
    done: asyncio.Future[Outcome]
    replayed: bool = False


class WebhookDispatcher:
    """Delivers one subscriber's notifications with per-citizen FIFO queues and retries."""

    def __init__(
        self,
        endpoint: WebhookEndpoint,
        store: FailedDeliveryStore,
        *,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        on_gone: OnGone | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        max_concurrency: int = 16,
        request_timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        # Held deliveries dropped on replay because their citizen was deleted (unreadable).
        self.shredded = 0
        self.policy = policy or RetryPolicy()
        self._key = decode_secret(endpoint.secret)
        self._session = session
        self._owns_session = session is None
        self._on_gone = on_gone
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # jitter only, not security
        self._limit = asyncio.Semaphore(max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._queues: dict[str, deque[_Item]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        # Citizens with held messages (also after a restart): their later messages wait behind.
        self._parked: set[str] = set(store.citizen_keys())
        self.disabled = False

    # ---- public API ----

    def send(self, message: WebhookMessage) -> asyncio.Future[Outcome]:
        """Queue ``message`` behind the citizen's earlier ones; the future tells when it is safe."""
        item = _Item(message, asyncio.get_running_loop().create_future())
        self._enqueue(message.citizen_key, [item], front=False)
        return item.done

    async def flush(self) -> None:
        """Wait until every queued message is delivered or held."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()))

    async def replay(self) -> int:
        """Re-send every held message, per citizen in its original order, ahead of newer ones.

        Re-enables a disabled dispatcher (replay is the operator's act after resuming the
        subscriber). A message delivered on replay leaves the store; one that fails again stays.
        """
        self.store.settle()  # old clear rows: sealed, or dropped when their citizen was deleted
        self.shredded += self.store.take_dropped()
        for gone in self.store.unreadable():
            # The citizen was deleted: the held body can no longer be opened, so nothing is sent.
            self.store.remove(gone)
            self.shredded += 1
            log.info("webhook.replay.citizen-deleted", subscriber=self.endpoint.subscriber_id, notification_id=gone)
        # Not "deleted": the subscriber's keys are not read yet. Kept, and their citizens' later
        # messages wait behind them, for a replay once the keys are loaded.
        waiting = self.store.waiting_citizens()
        entries = [e for e in self.store.entries() if e.citizen_key not in waiting]
        if waiting:
            log.warning("webhook.replay.keys-not-loaded", subscriber=self.endpoint.subscriber_id,
                        held=len(self.store.waiting()))
        self.disabled = False
        self._parked = set(waiting)
        by_citizen: dict[str, list[_Item]] = {}
        loop = asyncio.get_running_loop()
        for e in entries:
            msg = WebhookMessage(e.notification_id, e.citizen_key, e.body.encode("utf-8"))
            by_citizen.setdefault(e.citizen_key, []).append(_Item(msg, loop.create_future(), replayed=True))
        for citizen_key, items in by_citizen.items():
            self._enqueue(citizen_key, items, front=True)
        log.info("webhook.replay", subscriber=self.endpoint.subscriber_id, messages=len(entries))
        return len(entries)

    async def abort(self) -> None:
        """Stop now: cancel queued and retrying deliveries and close the session. Their futures
        stay unresolved, so the Kafka shell does not commit them and reads them again later."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def close(self) -> None:
        """Finish queued work and close the HTTP session if this dispatcher made it."""
        await self.flush()
        if self._owns_session and self._session is not None:
            await self._session.close()

    # ---- queues ----

    def _enqueue(self, citizen_key: str, items: list[_Item], *, front: bool) -> None:
        queue = self._queues.setdefault(citizen_key, deque())
        if front:
            queue.extendleft(reversed(items))
        else:
            queue.extend(items)
        if citizen_key not in self._workers:
            self._workers[citizen_key] = asyncio.create_task(self._drain(citizen_key))

    async def _drain(self, citizen_key: str) -> None:
        queue = self._queues[citizen_key]
        try:
            while queue:
                item = queue.popleft()
                try:
                    outcome = await self._deliver(item)
                except Exception as exc:  # noqa: BLE001 - a bug must not lose the message: hold it
                    outcome = self._hold(item, f"internal error: {type(exc).__name__}", 0)
                if not item.done.done():
                    item.done.set_result(outcome)
        finally:
            # No await between the last ``while queue`` check and here, so nothing slips in.
            del self._queues[citizen_key]
            del self._workers[citizen_key]

    # ---- delivery ----

    async def _deliver(self, item: _Item) -> Outcome:
        msg = item.message
        if self.disabled or msg.citizen_key in self._parked:
            return self._hold(item, "held behind an earlier undelivered message", 0)
        first = self._clock()
        attempt = 0
        while True:
            attempt += 1
            verdict, status, retry_after = await self._attempt(msg)
            if verdict is Verdict.DELIVERED:
                if item.replayed:
                    self.store.remove(msg.notification_id)
                return Outcome.DELIVERED
            if verdict is Verdict.GONE:
                self._gone()
                return self._hold(item, "endpoint gone (410)", attempt)
            if verdict is Verdict.REFUSED:
                return self._hold(item, f"refused with HTTP {status}", attempt)
            age = (self._clock() - first).total_seconds()
            if self.policy.gives_up(attempt, age):
                return self._hold(item, f"gave up after {attempt} attempts (last: {status or 'no answer'})", attempt)
            delay = self.policy.honour(retry_after) if retry_after is not None else self.policy.backoff(
                attempt, self._rng)
            log.info("webhook.retry", subscriber=self.endpoint.subscriber_id, notification_id=msg.notification_id,
                     attempt=attempt, status=status, delay_s=round(delay, 3))
            await self._sleep(delay)
            if self.disabled:
                return self._hold(item, "endpoint gone (410)", attempt)

    async def _attempt(self, msg: WebhookMessage) -> tuple[Verdict, int | None, float | None]:
        now = self._clock()
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg.notification_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, msg.notification_id, timestamp, msg.body),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._limit, self._session.post(
                self.endpoint.url, data=msg.body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                status = resp.status
                retry_after = None
                if status in (429, 503):
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._clock())
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook.no_answer", subscriber=self.endpoint.subscriber_id,
                     notification_id=msg.notification_id, error=type(exc).__name__)
            return Verdict.RETRY, None, None
        return classify(status), status, retry_after

    def _hold(self, item: _Item, reason: str, attempts: int) -> Outcome:
        msg = item.message
        self.store.add(FailedDelivery(msg.notification_id, msg.citizen_key, msg.body.decode("utf-8"), reason,
                                      attempts, self._clock().isoformat()))
        if msg.notification_id not in self.store:
            # The store refused it: the citizen was deleted meanwhile, and nothing about them is
            # kept or sent (R7.3). Their later messages need not wait behind it.
            log.warning("webhook.not-held", subscriber=self.endpoint.subscriber_id,
                        notification_id=msg.notification_id, reason="the citizen has been deleted")
            return Outcome.HELD
        self._parked.add(msg.citizen_key)
        log.warning("webhook.held", subscriber=self.endpoint.subscriber_id, notification_id=msg.notification_id,
                    reason=reason)
        return Outcome.HELD

    def _gone(self) -> None:
        if self.disabled:
            return
        self.disabled = True
        log.warning("webhook.endpoint_disabled", subscriber=self.endpoint.subscriber_id, status=410)
        if self._on_gone is not None:
            self._on_gone(self.endpoint.subscriber_id)
