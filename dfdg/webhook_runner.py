"""Runs webhook delivery against Kafka: one feed per webhook subscriber in the registry.

Each feed consumes the subscriber's notify topic in consumer group ``<id>.webhooks`` (``:`` →
``.``; the broker's ACLs allow only groups with the subscriber's prefix), hands every
notification to that subscriber's ``WebhookDispatcher`` and commits an offset only when every
notification up to it is delivered or durably held (the dispatcher's ``Outcome`` futures). A
crash therefore re-sends at most the uncommitted tail, with the same ``webhook-id``.

The registry is re-read every ``poll_interval`` seconds:

- ``active``: the feed runs (it is started if new, resumed if suspended);
- ``suspended``: the feed finishes what it has in flight (within ``grace``), commits, and
  pauses: no reads, no commits, no deliveries. On resume it seeks to its committed offset, so it
  gets every notification it missed, per citizen in order;
- ``disabled`` (410 Gone) or removed: the feed stops. What the dispatcher held sits in the
  replay store until an operator replays (``dfdg webhooks replay``) and resumes.

While a feed is running it holds an exclusive lock on its replay store, so ``replay`` (another
process) can only run while the subscriber is suspended, disabled or the runner is stopped.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from dfdg.jsonio import to_jsonable
from dfdg.subscriber_keys import SubscriberKeys
from processors.subscribers import Registry, Subscriber
from schemas.codec import Codec
from schemas.records import Notification
from sinks import registry_store
from sinks.crypto import DataKey
from sinks.webhook import Outcome, WebhookDispatcher, WebhookEndpoint, WebhookMessage, disable_in_registry
from sinks.webhook_retry import RetryPolicy, resolve_secret
from sinks.webhook_store import FailedDeliveryStore
from streams.kafka_auth import client_config
from streams.keystore import KeysUnavailable, UnknownKey

__all__ = ["StoreLocked", "WebhookRunner", "default_held_dir", "group_for", "lock_store"]

log = structlog.get_logger("dfdg.webhook_runner")

Pending = deque[tuple[int, "asyncio.Future[Outcome]"]]


def default_held_dir() -> Path:
    """``$DFDG_WEBHOOK_HELD_DIR``, else ``$DFDG_HOME/webhook-held`` (``~/.cache/dfdg``)."""
    if held := os.environ.get("DFDG_WEBHOOK_HELD_DIR"):
        return Path(held)
    return Path(os.environ.get("DFDG_HOME") or Path.home() / ".cache" / "dfdg") / "webhook-held"


def group_for(subscriber_id: str) -> str:
    """The webhook consumer group of a subscriber: its id as prefix, like every group it may use."""
    return f"{subscriber_id.replace(':', '.')}.webhooks"


class StoreLocked(RuntimeError):
    """Another process (the runner) is serving this subscriber's webhook."""


def lock_store(store: FailedDeliveryStore) -> IO[str]:
    """Take the store's exclusive lock without waiting; close the returned file to release it."""
    handle = open(store.path.with_name(store.path.name + ".lock"), "a")  # noqa: SIM115 - held beyond this scope
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreLocked(f"{store.path.name} is in use by a running webhook runner") from None
    return handle


class _FeedKeys:
    """The feed's subscriber keys, started when the first personal part arrives (``_payload``)."""

    def __init__(self, feed: _Feed) -> None:
        self._feed = feed

    def loaded(self) -> bool:
        keys = self._feed._keys
        return keys is not None and keys.loaded()

    def known(self, citizen: str) -> DataKey | None:
        keys = self._feed._keys
        return keys.known(citizen) if keys is not None else None

    def all_for(self, citizen: str) -> list[DataKey]:
        keys = self._feed._keys
        return keys.all_for(citizen) if keys is not None else []


class _Feed:
    """One subscriber: its consumer, its dispatcher and the offsets waiting for outcomes."""

    def __init__(self, runner: WebhookRunner, sub: Subscriber) -> None:
        self.runner = runner
        self.sub = sub
        self.state = sub.state
        self.changed = asyncio.Event()
        self.stopping = False
        self._consumer: AIOKafkaConsumer | None = None
        self._dispatcher: WebhookDispatcher | None = None
        self._keys: SubscriberKeys | None = None
        self._lock: IO[str] | None = None
        self._pending: dict[TopicPartition, Pending] = {}

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state  # type: ignore[assignment]
            self.changed.set()

    def stop(self) -> None:
        self.stopping = True
        self.changed.set()

    # ---- life cycle ----

    async def run(self) -> None:
        r = self.runner
        self._consumer = AIOKafkaConsumer(
            self.sub.topic, bootstrap_servers=r.bootstrap, group_id=group_for(self.sub.id),
            enable_auto_commit=False, auto_offset_reset="earliest", **{**client_config(), **r.consumer_config})
        await self._consumer.start()
        try:
            await self._loop()
        finally:
            await self._close_dispatcher()
            await self._consumer.stop()
            if self._keys is not None:
                await self._keys.stop()

    async def _loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        paused = False
        while not self.stopping:
            if self.state != "active":
                if not paused:
                    await self._close_dispatcher()
                    paused = True
                    log.info("webhooks.paused", subscriber=self.sub.id)
                consumer.pause(*consumer.assignment())
                # Still polled (paused: returns nothing) so the group keeps this member.
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    consumer.seek(tp, records[0].offset)  # a fresh assignment slipped through: put back
                if self.runner.once:
                    return
                await self._wait_change(1.0)
                continue
            if paused or self._dispatcher is None:
                await consumer.seek_to_committed()
                consumer.resume(*consumer.assignment())
                await self._open_dispatcher()
                if paused:
                    log.info("webhooks.resumed", subscriber=self.sub.id)
                paused = False
            batch = await consumer.getmany(timeout_ms=int(self.runner.fetch_timeout * 1000),
                                           max_records=self.runner.max_in_flight)
            for tp, records in batch.items():
                for record in records:
                    await self._hand(tp, record.offset, record.value)
            await self._commit_done()
            in_flight = self._in_flight()
            if in_flight and (not batch or in_flight >= self.runner.max_in_flight):
                await self._wait_outcomes(1.0)
                await self._commit_done()
            elif self.runner.once and not batch and not in_flight:
                return

    async def _wait_change(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            pass
        self.changed.clear()

    async def _open_dispatcher(self) -> None:
        r = self.runner
        # Held bodies are sealed per citizen with the keys that opened their personal part.
        store = FailedDeliveryStore(r.held_dir, self.sub.id, keys=_FeedKeys(self))
        self._lock = lock_store(store)
        if len(store):
            # Held rows from before the spool was sealed are sealed or dropped now, not at replay.
            await self._start_keys()
            store.settle()
        assert self.sub.webhook_url is not None and self.sub.webhook_secret_ref is not None
        endpoint = WebhookEndpoint(self.sub.id, self.sub.webhook_url, resolve_secret(self.sub.webhook_secret_ref))
        self._dispatcher = WebhookDispatcher(endpoint, store, policy=r.policy,
                                             on_gone=disable_in_registry(r.registry_path), **r.dispatcher_options)

    async def _close_dispatcher(self) -> None:
        """Let in-flight deliveries finish (within ``grace``), commit them, release the store."""
        if self._dispatcher is None:
            return
        flushing = asyncio.ensure_future(self._dispatcher.flush())
        await asyncio.wait({flushing}, timeout=self.runner.grace)
        if not flushing.done():
            # Cut off mid-retry: not committed, so read again after resume or restart.
            log.warning("webhooks.flush_timeout", subscriber=self.sub.id, in_flight=self._in_flight())
            await self._dispatcher.abort()
        await asyncio.gather(flushing, return_exceptions=True)
        await self._commit_done()
        await self._dispatcher.close()
        self._dispatcher = None
        self._pending.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ---- offsets ----

    async def _hand(self, tp: TopicPartition, offset: int, value: bytes) -> None:
        assert self._dispatcher is not None
        try:
            notification = self.runner.codec.decode(value)
            if not isinstance(notification, Notification):
                raise TypeError(type(notification).__name__)
        except Exception as exc:  # noqa: BLE001 - a record the worker wrote but we cannot read
            # Nothing to deliver and nothing to hold it by: logged (no payload) and passed over.
            log.error("webhooks.undecodable", subscriber=self.sub.id, topic=tp.topic, partition=tp.partition,
                      offset=offset, error=type(exc).__name__)
            done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            done.set_result(Outcome.HELD)
            self._pending.setdefault(tp, deque()).append((offset, done))
            return
        message = WebhookMessage.from_payload(notification.notification_id, notification.citizen_key,
                                              await self._payload(notification))
        self._pending.setdefault(tp, deque()).append((offset, self._dispatcher.send(message)))

    async def _payload(self, notification: Notification) -> dict[str, Any]:
        """The JSON body: the notification with its sealed personal part opened for this
        subscriber (HTTPS to the entitled endpoint), or left out once the citizen is deleted."""
        body: dict[str, Any] = to_jsonable(notification)
        sealed = body.pop("personal", None)
        if sealed is not None:
            await self._start_keys()
            try:
                body.update(await self._keys.personal(notification) or {})
            except UnknownKey:
                log.info("webhooks.personal-gone", subscriber=self.sub.id, notification_id=notification.notification_id)
            except KeysUnavailable:
                # No answer about the citizen: the feed stops here, uncommitted, and is started
                # again from its committed offset on the next registry poll.
                log.warning("webhooks.keys-unavailable", subscriber=self.sub.id,
                            notification_id=notification.notification_id)
                raise
        return body

    async def _start_keys(self) -> None:
        if self._keys is None:
            self._keys = SubscriberKeys(self.runner.bootstrap, self.sub.id)
            await self._keys.start()

    def _in_flight(self) -> int:
        return sum(len(q) for q in self._pending.values())

    async def _wait_outcomes(self, timeout: float) -> None:
        futures = [q[0][1] for q in self._pending.values() if q]
        if futures:
            await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)

    async def _commit_done(self) -> None:
        """Commit, per partition, up to the first notification not yet delivered or held."""
        assert self._consumer is not None
        offsets: dict[TopicPartition, int] = {}
        for tp, queue in self._pending.items():
            while queue and queue[0][1].done() and not queue[0][1].cancelled():
                offsets[tp] = queue.popleft()[0] + 1
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # Lost the partition in a rebalance: its new owner re-sends from the last commit.
            log.warning("webhooks.commit_failed", subscriber=self.sub.id, error=type(exc).__name__)
            assigned = self._consumer.assignment()
            for tp in [tp for tp in self._pending if tp not in assigned]:
                del self._pending[tp]


class WebhookRunner:
    """Serves every webhook subscriber of the registry until ``stop()`` (or, with ``once``, until
    each active one has delivered or held everything on its topic)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        registry_path: Path | str | None = None,
        held_dir: Path | str | None = None,
        policy: RetryPolicy | None = None,
        poll_interval: float = 2.0,
        grace: float = 10.0,
        once: bool = False,
        max_in_flight: int = 1000,
        fetch_timeout: float = 0.5,
        codec: Codec | None = None,
        consumer_config: dict[str, Any] | None = None,
        dispatcher_options: dict[str, Any] | None = None,
        registry_loader: Callable[[], Registry] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.registry_path = registry_store.registry_path(registry_path)
        self.held_dir = Path(held_dir) if held_dir is not None else default_held_dir()
        self.policy = policy or RetryPolicy()
        self.poll_interval = poll_interval
        self.grace = grace
        self.once = once
        self.max_in_flight = max_in_flight
        self.fetch_timeout = fetch_timeout
        self.codec = codec or Codec.default()
        self.consumer_config = consumer_config or {}
        self.dispatcher_options = dispatcher_options or {}
        self._load = registry_loader or (lambda: registry_store.load(self.registry_path))
        self._feeds: dict[str, tuple[_Feed, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask for a clean shutdown (the SIGTERM handler calls this)."""
        self._stop.set()

    def feed_ids(self) -> list[str]:
        """Subscribers with a running or paused feed."""
        return sorted(i for i, (_, task) in self._feeds.items() if not task.done())

    async def run(self) -> None:
        """Serve until stopped; feeds are started, paused, resumed and stopped as the registry says."""
        try:
            while not self._stop.is_set():
                self._apply(self._read_registry())
                if self.once:
                    # One pass over what is on the topics now; registry changes are not followed.
                    await asyncio.gather(*(task for _, task in self._feeds.values()), return_exceptions=True)
                    break
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_interval)
                except TimeoutError:
                    pass
        finally:
            for feed, _ in self._feeds.values():
                feed.stop()
            await asyncio.gather(*(task for _, task in self._feeds.values()), return_exceptions=True)
            for sub_id, (_, task) in self._feeds.items():
                if not task.cancelled() and task.exception() is not None:
                    log.error("webhooks.feed_failed", subscriber=sub_id, error=repr(task.exception()))

    def _read_registry(self) -> Registry | None:
        try:
            return self._load()
        except Exception as exc:  # noqa: BLE001 - a half-edited file must not stop delivery
            log.error("webhooks.registry_unreadable", error=type(exc).__name__)
            return None

    def _apply(self, registry: Registry | None) -> None:
        if registry is None:
            return
        wanted = {s.id: s for s in registry.values() if s.webhook_url is not None}
        for sub_id, (feed, task) in list(self._feeds.items()):
            sub = wanted.get(sub_id)
            if task.done():
                del self._feeds[sub_id]
                if not task.cancelled() and task.exception() is not None:
                    log.error("webhooks.feed_failed", subscriber=sub_id, error=repr(task.exception()))
                    continue  # restarted below when still wanted
            elif sub is None or sub.state == "disabled" or (
                    sub.webhook_url, sub.webhook_secret_ref) != (feed.sub.webhook_url, feed.sub.webhook_secret_ref):
                log.info("webhooks.stopping", subscriber=sub_id, state=sub.state if sub else "removed")
                feed.stop()  # a changed endpoint restarts once this feed has stopped
            else:
                feed.set_state(sub.state)
        for sub_id, sub in wanted.items():
            if sub_id in self._feeds or sub.state != "active":
                continue
            feed = _Feed(self, sub)
            self._feeds[sub_id] = (feed, asyncio.create_task(feed.run(), name=f"webhooks-{sub_id}"))
            log.info("webhooks.started", subscriber=sub_id, group=group_for(sub_id))
