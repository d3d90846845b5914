"""The operator endpoints over real HTTP on 127.0.0.1 (aiohttp's test server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from streams.lag import GroupLag, LagHistory, LagSnapshot, LagTracker, PartitionLag
from streams.metrics import Metrics
from streams.web import PipelineStatus, Readiness, build_web_app


def _history() -> LagHistory:
    tracker, history = LagTracker(window=3), LagHistory()
    for i in range(5):
        parts = (PartitionLag("dfdg.events", 0, 10 * i, 10 * i + 5, 1.0), PartitionLag("dfdg.deadlines", 0, i, i, 0.0))
        history.record(tracker.observe(LagSnapshot(1_000_000.0 + 60 * i, (GroupLag("dfdg", "Stable", 1, parts),))))
    return history


@pytest.fixture()
async def web_env() -> AsyncIterator[tuple[TestClient, Metrics, Readiness]]:
    metrics, readiness = Metrics(), Readiness()

    async def status() -> PipelineStatus:
        return PipelineStatus("OK", {"E201": 3, "E104": 1}, deadlines_pending=7, deadlines_overdue=2,
                              oldest_overdue_s=300.0)

    app = build_web_app(metrics, readiness, _history(), status)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, metrics, readiness


async def test_metrics_endpoint_serves_prometheus_text(web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, metrics, _ = web_env
    metrics.dead_letter("E201")
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    names = {f.name for f in text_string_to_metric_families(await resp.text())}
    assert {"dfdg_dead_letters", "dfdg_processing_seconds", "dfdg_consumer_lag_messages"} <= names


async def test_health_is_200_while_alive(web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, _, _ = web_env
    assert (await client.get("/health")).status == 200


async def test_ready_only_after_assignment_and_recovery(web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, _, readiness = web_env
    assert (await client.get("/ready")).status == 503
    readiness.mark_assigned()
    assert (await client.get("/ready")).status == 503
    readiness.mark_recovered()
    resp = await client.get("/ready")
    assert resp.status == 200 and (await resp.json())["ready"] is True
    readiness.mark_revoked()
    assert (await client.get("/ready")).status == 503


async def test_api_status_has_lag_series_dead_letters_and_deadlines(
        web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, _, _ = web_env
    resp = await client.get("/api/status")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "OK"
    assert body["lag"]["window_s"] == 3600
    assert body["lag"]["series"]["dfdg.events"] == [[1_000_000.0 + 60 * i, 5] for i in range(5)]
    assert body["lag"]["series"]["dfdg.deadlines"][-1] == [1_000_240.0, 0]
    assert body["lag"]["groups"] == [{"group": "dfdg", "status": "OK", "total_lag": 5}]
    assert body["dead_letters"] == {"E201": 3, "E104": 1}
    assert body["deadlines"] == {"pending": 7, "overdue": 2, "oldest_overdue_s": 300.0}


async def test_api_lag_is_the_latest_report(web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, _, _ = web_env
    body = await (await client.get("/api/lag")).json()
    assert body["taken_at"] == 1_000_240.0
    assert body["groups"][0]["partitions"][0]["lag"] in {0, 5}


async def test_api_lag_is_503_before_any_observation() -> None:
    app = build_web_app(Metrics(), Readiness(), LagHistory(), lambda: PipelineStatus())
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/api/lag")).status == 503
        body = await (await client.get("/api/status")).json()
        assert body["lag"]["status"] == "UNKNOWN" and body["lag"]["series"] == {}


async def test_live_page_is_served_as_html(web_env: tuple[TestClient, Metrics, Readiness]) -> None:
    client, _, _ = web_env
    resp = await client.get("/live")
    assert resp.status == 200 and resp.content_type == "text/html"
    text = await resp.text()
    assert 'id="lag-chart"' in text and "api/status" in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # no CDN: the machine is offline


def test_lag_history_keeps_one_hour() -> None:
    tracker, history = LagTracker(), LagHistory(max_age_s=3600)
    for ts in (0.0, 1800.0, 3700.0):
        parts = (PartitionLag("t", 0, 0, 3, None),)
        history.record(tracker.observe(LagSnapshot(ts, (GroupLag("dfdg", "Empty", 0, parts),))))
    assert [p[0] for p in history.series()["t"]] == [1800.0, 3700.0]
