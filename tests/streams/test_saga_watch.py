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
    RETRY_BY_TIMER,
    RetryPolicy,
    delivery_backoff,
    on_delivery_failed,
)
from processors.deceased import on_delivered, on_rejection
from schemas.archive_records import ArchiveRetry
from schemas.codec import Codec
from streams.citizen_rows import RowHeader, decode_row, encode_row
from streams.lag import LagHistory
from streams.metrics import Metrics
from streams.outbox import KafkaSender
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
