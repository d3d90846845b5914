"""Stuck sagas (R7.2) as operators and the worker see them: the saga watch, the gauge it fills,
the live page that shows it, and the retry it sends when a failed delivery's backoff is over."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from processors.archive_retry import DELIVERY_RETRY_FIRST, RETRY_BY_TIMER, on_delivery_failed
from processors.deceased import on_delivered, on_rejection
from schemas.archive_records import ArchiveRetry
from schemas.codec import Codec
from streams.citizen_rows import RowHeader, decode_row, encode_row
from streams.lag import LagHistory
from streams.metrics import Metrics
from streams.outbox import KafkaSender
from streams.saga_watch import SagaWatch
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
    producer = RecordingProducer()
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
