"""The live page in headless Chromium against the real web app fed a made-up status: the lag
chart draws a full hour of history, the badges and tables fill in, and a screenshot is kept in
test-artifacts/. The same page against a real worker: test_live_page_worker.py."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from streams.lag import GroupLag, LagHistory, LagSnapshot, LagTracker, PartitionLag
from streams.metrics import Metrics
from streams.web import PipelineStatus, Readiness, build_web_app
from tests.chromium import ARTIFACTS, chromium_run

POINTS = 60


def _history(now: float) -> LagHistory:
    tracker, history = LagTracker(window=5), LagHistory()
    for i in range(POINTS):
        ts = now - 3540 + 60 * i
        events_lag = int(200 + 150 * ((i % 20) / 20)) if i < 45 else 20
        parts = (PartitionLag("dfdg.events", 0, 1000 * i, 1000 * i + events_lag, 3.0),
                 PartitionLag("dfdg.deadlines", 0, i, i + (i % 7), 1.0))
        history.record(tracker.observe(LagSnapshot(ts, (GroupLag("dfdg", "Stable", 1, parts),))))
    return history


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
async def live_url() -> AsyncIterator[str]:
    status = PipelineStatus("WARN", {"E201": 12, "E104": 3, "E305": 1}, deadlines_pending=42,
                            deadlines_overdue=2, oldest_overdue_s=5400.0)
    app = build_web_app(Metrics(), Readiness(), _history(time.time()), lambda: status)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/live"
    finally:
        await runner.cleanup()


async def test_live_page_draws_the_lag_chart_from_api_status(live_url: str) -> None:
    dom = await chromium_run("--dump-dom", live_url)
    chart = re.search(r'<svg id="lag-chart" data-points="(\d+)"', dom)
    assert chart is not None, dom[:2000]
    assert int(chart.group(1)) == 2 * POINTS  # two topics, every point of the hour
    assert dom.count("<path") == 2 and 'data-topic="dfdg.events"' in dom
    assert re.search(r'id="status" class="badge WARN"', dom)
    assert re.search(r'id="lag-status" class="badge OK"', dom)
    assert re.search(r'id="deadlines-pending">42<', dom) and re.search(r'id="deadlines-overdue"[^>]*>2<', dom)
    assert "<td>E201</td><td class=\"n\">12</td>" in dom
    assert '<span id="error"></span>' in dom  # no fetch failure shown


async def test_live_page_screenshot_is_saved_as_artifact(live_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "live-page.png"
    shot.unlink(missing_ok=True)
    await chromium_run(f"--screenshot={shot}", "--window-size=1200,800", live_url)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
