"""Stuck sagas (R7.2) as operators and the worker see them: the saga watch, the gauge it fills,
the live page that shows it, and the retry it sends when a failed delivery's backoff is over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from processors.archive_retry import (
    DEFAULT_RETRY_POLICY,
    DELIVERY_RETRY_CAP,
    DELIVERY_RETRY_FIRST,
    RETRY_BY_OPERATOR,
    RETRY_BY_TIMER,
    RetryPolicy,
    delivery_backoff,
    on_delivery_failed,
    on_retry_requested,
)
from processors.deceased import on_delivered, on_rejection
from processors.model import CitizenState, deterministic_id
from schemas.archive_records import ArchiveRetry
from schemas.codec import Codec
from streams.citizen_repo import Citizen
from streams.citizen_rows import RowHeader, decode_row, encode_row
from streams.lag import LagHistory
from streams.metrics import Metrics
from streams.outbox import KafkaSender, Outbox
from streams.saga import SagaRunner
from streams.saga_watch import SagaWatch
from streams.settings import ConfigError, Settings
from streams.web import PipelineStatus, Readiness, build_web_app
from tests.processors.test_deceased import NOW, SHA, _saga
from tests.recording_producer import RecordingProducer


def _watch() -> SagaWatch:
    failed = on_delivery_failed(_saga(), NOW, "OSError")
    delivered = on_delivered(_saga(), SHA)
    rejected = on_rejection(delivered, delivered.package_id, "bad bag")
    # The watch is rebuilt from stored rows: the saga survives its row header.
    rows = {key: decode_row(encode_row(RowHeader(p, (), saga), b""))[0]
            for key, p, saga in (("k-failed", 0, failed), ("k-delivered", 1, delivered), ("k-rejected", 2, rejected))}
    watch = SagaWatch()
    watch.rebuild(rows.items())
    return watch


def test_r7_2_the_saga_gauge_counts_waiting_sagas_and_their_longest_wait() -> None:
    watch, metrics = _watch(), Metrics()
    later = NOW + timedelta(hours=3)
    metrics.set_archive_sagas(watch.waiting(), watch.oldest_wait_seconds(later))
    samples = {(s.name, s.labels.get("state")): s.value
               for fam in text_string_to_metric_families(metrics.render().decode()) for s in fam.samples}
    assert samples[("dfdg_archive_sagas", "pending")] == 1
    assert samples[("dfdg_archive_sagas", "delivered")] == 1
    assert samples[("dfdg_archive_sagas", "rejected")] == 1
    assert samples[("dfdg_archive_saga_oldest_wait_seconds", None)] == 3 * 3600
    watch.update("k-rejected", 2, None, erased=True)  # finished: no longer waits
    assert watch.waiting()["rejected"] == 0


async def test_r7_2_the_live_page_shows_waiting_sagas() -> None:
    watch = _watch()
    status = PipelineStatus(archive_sagas=watch.waiting(), archive_oldest_wait_s=watch.oldest_wait_seconds(NOW))
    app = build_web_app(Metrics(), Readiness(), LagHistory(), lambda: status)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        body = await (await client.get("/api/status")).json()
        assert body["archive_sagas"]["waiting"] == {"pending": 1, "delivered": 1, "rejected": 1}
        assert body["archive_sagas"]["total"] == 3
        page = await (await client.get("/live")).text()
        assert 'id="sagas-rejected"' in page and "archive_sagas" in page


async def test_r7_2_a_failed_delivery_is_woken_once_its_backoff_is_over() -> None:
    watch, codec = _watch(), Codec.default()
    class NamedPartitionsOnly(RecordingProducer):
        async def partition_for(self, topic: str, key: bytes | None) -> int:
            raise AssertionError("the watch names the saga's partition itself")

    producer = NamedPartitionsOnly()
    sender = KafkaSender(producer, 1_000_000)
    assert await watch.wake_due(NOW, lambda: {0, 1, 2}, sender, codec, "dfdg.archive-receipts") == 0
    after = NOW + DELIVERY_RETRY_FIRST
    assert await watch.wake_due(after, lambda: {1, 2}, sender, codec, "dfdg.archive-receipts") == 0  # not owned
    assert await watch.wake_due(after, lambda: {0, 1, 2}, sender, codec, "dfdg.archive-receipts") == 1
    assert await watch.wake_due(after, lambda: {0, 1, 2}, sender, codec, "dfdg.archive-receipts") == 0  # once
    [(topic, key, value, _, partition)] = producer.records
    retry = codec.decode(value or b"")
    assert isinstance(retry, ArchiveRetry) and retry.requested_by == RETRY_BY_TIMER
    assert (topic, key, partition) == ("dfdg.archive-receipts", b"k-failed", 0)


def test_r7_2_the_runner_fills_the_watch_the_timer_reads_even_when_it_starts_empty() -> None:
    # An empty watch is falsy (len 0): the runner once swapped it for a private one, so the timer
    # never saw a failed delivery until a rebalance rebuilt the watch from the rows.
    watch = SagaWatch()
    runner = SagaRunner(outputs=None, sender=None, codec=Codec.default(), sealer=None,  # type: ignore[arg-type]
                        archive_inbox=None, metrics=Metrics(), crash=None, watch=watch)  # type: ignore[arg-type]
    assert runner.watch is watch
    failed = on_delivery_failed(_saga(), NOW, "OSError")
    runner.watch.update("k-failed", 0, failed, erased=False)
    assert [key for key, _, _ in watch.due(NOW + DELIVERY_RETRY_FIRST, {0})] == ["k-failed"]


def test_r7_2_the_delivery_backoff_is_shortened_for_tests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DFDG_ARCHIVE_RETRY_FIRST_SECONDS", raising=False)
    monkeypatch.delenv("DFDG_ARCHIVE_RETRY_CAP_SECONDS", raising=False)
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    assert Settings.from_env().archive_retry == DEFAULT_RETRY_POLICY == RetryPolicy(DELIVERY_RETRY_FIRST,
                                                                                    DELIVERY_RETRY_CAP)
    monkeypatch.setenv("DFDG_ARCHIVE_RETRY_FIRST_SECONDS", "1")
    monkeypatch.setenv("DFDG_ARCHIVE_RETRY_CAP_SECONDS", "2")
    policy = Settings.from_env().archive_retry
    assert [delivery_backoff(n, policy) for n in (1, 2, 3, 50)] == [timedelta(seconds=s) for s in (1, 2, 2, 2)]
    # A deployment keeps the policy's named assumptions: outside dev mode the setting is refused.
    monkeypatch.setenv("DFDG_PSEUDONYM_KEY", "a-test-key")
    monkeypatch.delenv("DFDG_DEV_MODE")
    with pytest.raises(ConfigError, match="for tests"):
        Settings.from_env()
    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    for first, cap in (("0", "2"), ("3", "2"), ("soon", "2"), ("nan", "2"), ("1", "inf")):
        monkeypatch.setenv("DFDG_ARCHIVE_RETRY_FIRST_SECONDS", first)
        monkeypatch.setenv("DFDG_ARCHIVE_RETRY_CAP_SECONDS", cap)
        with pytest.raises(ConfigError):
            Settings.from_env()


def _sender() -> tuple[RecordingProducer, KafkaSender]:
    producer = RecordingProducer()
    return producer, KafkaSender(producer, 1_000_000)


def _retries(producer: RecordingProducer) -> list[ArchiveRetry]:
    codec = Codec.default()
    found = [codec.decode(value or b"") for _, _, value, _, _ in producer.records]
    assert all(isinstance(r, ArchiveRetry) for r in found)
    return found  # type: ignore[return-value]


async def test_r7_2_a_pending_saga_never_retried_is_woken_once_after_a_rebuild() -> None:
    # A row from before retries: the delivery failed, the saga is pending and has no retry_at.
    stuck = _saga()
    assert stuck.step == "pending" and stuck.retry_at is None
    watch, codec = SagaWatch(), Codec.default()
    watch.rebuild([("k-stuck", decode_row(encode_row(RowHeader(3, (), stuck), b""))[0])])
    producer, sender = _sender()
    assert await watch.wake_due(NOW, lambda: {3}, sender, codec, "dfdg.archive-receipts") == 1
    soon = NOW + DELIVERY_RETRY_CAP - timedelta(seconds=1)  # until the step has handled it (or it is lost)
    assert await watch.wake_due(soon, lambda: {3}, sender, codec, "dfdg.archive-receipts") == 0
    [retry] = _retries(producer)
    assert (retry.citizen_key, retry.requested_by) == ("k-stuck", RETRY_BY_TIMER)
    # The worker fills the watch through ``restore`` after a rebalance: the same rule.
    restored = SagaWatch()
    restored.restore("k-stuck", 3, stuck, erased=False)
    assert [key for key, _, _ in restored.due(NOW, {3})] == ["k-stuck"]
    # The step's own updates are not a rebuild: a saga it has just started is not woken by the timer.
    runner_side = SagaWatch()
    runner_side.update("k-new", 3, stuck, erased=False)
    assert runner_side.due(NOW, {3}) == []


async def test_r7_2_a_retry_handled_without_progress_is_woken_again_after_the_next_backoff() -> None:
    # The retry's delivery raised something unexpected (E901): the row is rolled back, so the saga
    # still has the retry_at it was woken for. It must be woken again, after a backoff.
    failed = on_delivery_failed(_saga(), NOW, "OSError")
    assert failed.retry_at is not None
    watch, codec = SagaWatch(), Codec.default()
    watch.update("k-failed", 0, failed, erased=False)
    producer, sender = _sender()
    woken_at = failed.retry_at
    assert await watch.wake_due(woken_at, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 1
    assert await watch.wake_due(woken_at, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 0  # in flight
    watch.update("k-failed", 0, failed, erased=False)  # the step handled it; nothing recorded
    assert watch.due(woken_at + DELIVERY_RETRY_FIRST - timedelta(seconds=1), {0}) == []  # not every tick
    again = woken_at + DELIVERY_RETRY_FIRST
    assert await watch.wake_due(again, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 1
    first, second = _retries(producer)
    assert first.retry_id != second.retry_id
    # A retry that records a new failure is woken at its own retry_at, as before.
    watch.update("k-failed", 0, on_delivery_failed(failed, again, "OSError"), erased=False)
    assert watch.due(again, {0}) == []
    assert len(watch.due(again + 2 * DELIVERY_RETRY_FIRST, {0})) == 1


async def test_r7_2_a_lost_retry_is_sent_again_after_the_cap() -> None:
    # Sent, but the step never touched the saga (its row could not be loaded): not woken forever.
    failed = on_delivery_failed(_saga(), NOW, "OSError")
    assert failed.retry_at is not None
    watch, codec = SagaWatch(), Codec.default()
    watch.update("k-failed", 0, failed, erased=False)
    _, sender = _sender()
    assert await watch.wake_due(failed.retry_at, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 1
    assert watch.due(failed.retry_at + DELIVERY_RETRY_CAP - timedelta(seconds=1), {0}) == []
    assert len(watch.due(failed.retry_at + DELIVERY_RETRY_CAP, {0})) == 1


async def test_r7_2_timer_retry_ids_never_repeat_after_a_rejection_and_an_operator_retry() -> None:
    # First failure: woken for its backoff. Then delivered, rejected, retried by an operator (the
    # failure count starts again at 0) and failing again: the same count, another backoff.
    first = on_delivery_failed(_saga(), NOW, "OSError")
    rejected = on_rejection(on_delivered(first, SHA), first.package_id, "bad bag")
    later = NOW + timedelta(days=2)
    second = on_delivery_failed(on_retry_requested(rejected, RETRY_BY_OPERATOR, later), later, "OSError")
    assert first.failed_deliveries == second.failed_deliveries == 1 and first.retry_at != second.retry_at
    ids = []
    for saga in (first, second):
        watch, codec = SagaWatch(), Codec.default()
        watch.update("k", 0, saga, erased=False)
        producer, sender = _sender()
        assert saga.retry_at is not None
        assert await watch.wake_due(saga.retry_at, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 1
        ids += [r.retry_id for r in _retries(producer)]
    assert ids[0] != ids[1]
    # Derived, as docs/events.md says, from the package, 'backoff', the failures and the retry_at.
    assert first.retry_at is not None
    assert ids[0] == deterministic_id("archive-retry", first.package_id, RETRY_BY_TIMER, "1",
                                      f"retry_at@{first.retry_at.isoformat()}")


async def test_r7_2_a_saga_whose_keys_are_gone_backs_off_instead_of_never_retrying() -> None:
    # The package cannot be built (the citizen's keys were shredded): recorded as a failed delivery,
    # so the saga has a new retry_at and the timer wakes it after the backoff.
    watch = SagaWatch()
    runner = SagaRunner(outputs=None, sender=None, codec=Codec.default(), sealer=None,  # type: ignore[arg-type]
                        archive_inbox=None, metrics=Metrics(), crash=None, watch=watch)  # type: ignore[arg-type]
    citizen = Citizen("k-gone", 0, CitizenState(citizen_key="k-gone"), _saga(), unreadable=True)
    with Outbox() as box:
        await runner.run(citizen, NOW, box)
    assert citizen.saga is not None and citizen.saga.step == "pending"
    assert citizen.saga.failed_deliveries == 1 and citizen.saga.retry_at == NOW + DELIVERY_RETRY_FIRST
    assert citizen.saga.last_error == "UnknownKey"
    assert [key for key, _, _ in watch.due(NOW + DELIVERY_RETRY_FIRST, {0})] == ["k-gone"]


async def test_r7_2_a_rebalance_keeps_the_sagas_of_partitions_held_through_it_as_they_were() -> None:
    """A saga woken before a rebalance that keeps its partition is not woken again at once (its
    backoff holds); the sagas of partitions given away are let go of, and one restored when its
    partition comes back is due once, as after any rebuild."""
    stuck = _saga()
    watch, codec = SagaWatch(), Codec.default()
    watch.restore("k-kept", 0, stuck, erased=False)
    watch.restore("k-gone", 1, stuck, erased=False)
    producer, sender = _sender()
    assert await watch.wake_due(NOW, lambda: {0, 1}, sender, codec, "dfdg.archive-receipts") == 2
    watch.keep_only(frozenset({0}))
    assert len(watch) == 1 and watch.waiting()["pending"] == 1
    assert await watch.wake_due(NOW, lambda: {0}, sender, codec, "dfdg.archive-receipts") == 0
    watch.restore("k-gone", 1, stuck, erased=False)  # partition 1 back: its row read again
    assert [key for key, _, _ in watch.due(NOW, {0, 1})] == ["k-gone"]
    assert len(_retries(producer)) == 2
