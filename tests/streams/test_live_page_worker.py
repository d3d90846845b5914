"""The live page of a real worker on the real broker, in headless Chromium: it shows the worker's
own topics in the lag chart, its consumer group with the lag Kafka reports, and exactly the
deadlines the pure core says its citizens have pending. The screenshot is kept in
test-artifacts/live-page-worker.png (a CI artifact: .ci/run prints the folder)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dfdg.publisher import Publisher
from processors.model import CitizenState
from processors.pipeline import process
from schemas.topics import citizen_events_topic
from streams.citizen_loop import citizen_group
from streams.ingress_loop import door_group
from streams.lag import collect_lag
from tests.chromium import ARTIFACTS, chromium_run
from tests.integration.step_model import key_of, passed_cases
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
CASES = 40


def _pending_owed(cases: list[Any]) -> int:
    """Deadlines the core leaves pending for these cases at NOW (each case is its own citizen)."""
    return sum(len(process(CitizenState(citizen_key=key_of(c.cpr)), c, NOW).state.pending) for c in cases)


def _web_port(worker: WorkerProcess) -> int:
    worker.wait_for("operator pages listening", 60)
    # Read from the text: the line may follow a terminal escape that is not JSON.
    for line in worker.lines:
        found = re.search(r'"port": (\d+), "event": "operator pages listening"', line)
        if found:
            return int(found.group(1))
    raise AssertionError("the worker did not log its web port:\n" + worker.tail())


async def _status(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/status") as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def test_live_page_shows_a_real_workers_topics_lag_and_deadlines(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    app_id = f"live-{unique}"
    events_topic = citizen_events_topic(app_id)
    # Handover dates twenty days ahead of the worker's clock: their deadlines stay pending.
    cases = passed_cases(unique, CASES, NOW.date() + timedelta(days=30), NOW)
    pending = _pending_owed(cases)
    assert pending >= CASES
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w",
                           {"DFDG_NOW": NOW.isoformat(), "DFDG_ARCHIVE_INBOX": str(tmp_path / "inbox")}).start()
    try:
        base = f"http://127.0.0.1:{_web_port(worker)}"
        async with Publisher(bootstrap) as publisher:
            for case in cases:
                await publisher.publish(case, wait=False)
            await publisher.flush()

        # Wait until the worker has taken every case in and observed its lag at least twice.
        deadline = time.monotonic() + 120
        while True:
            status = await _status(base)
            # The door's group reads the ingress topics, the citizen step's group the events topic.
            mine = [g for g in status["lag"]["groups"] if g["group"] in (door_group(app_id), citizen_group(app_id))]
            series = status["lag"]["series"].get(events_topic, [])
            if (status["deadlines"]["pending"] == pending and len(mine) == 2
                    and all(g["total_lag"] == 0 for g in mine) and len(series) >= 2):
                break
            assert time.monotonic() < deadline, f"the worker's page never settled: {status}\n{worker.tail()}"
            await asyncio.sleep(1.0)
        # The lag the page reports is Kafka's: the same group read independently is at its end.
        snapshot = await collect_lag(bootstrap, [door_group(app_id), citizen_group(app_id)], "\x00")
        assert sum(p.lag for g in snapshot.groups for p in g.partitions) == 0
        assert {p.topic for g in snapshot.groups for p in g.partitions} >= {events_topic, "dfdg.case-created"}

        dom = await chromium_run("--dump-dom", f"{base}/live")
        assert '<span id="error"></span>' in dom, "the page reached the worker"
        assert re.search(r'id="status" class="badge OK"', dom), dom[:3000]
        assert f'data-topic="{events_topic}"' in dom and 'data-topic="dfdg.case-created"' in dom
        assert int(re.search(r'<svg id="lag-chart" data-points="(\d+)"', dom).group(1)) >= 2  # type: ignore[union-attr]
        for group in (door_group(app_id), citizen_group(app_id)):
            row = rf'<td>{re.escape(group)}</td><td><span class="badge OK">OK</span></td><td class="n">0</td>'
            assert re.search(row, dom), f"the worker's group {group} with its lag"
        assert re.search(rf'id="deadlines-pending">{pending}<', dom)
        assert re.search(r'id="deadlines-overdue"[^>]*>0<', dom)

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "live-page-worker.png"
        shot.unlink(missing_ok=True)
        await chromium_run(f"--screenshot={shot}", "--window-size=1200,900", f"{base}/live")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"\n[live page] worker {app_id}: {pending} deadlines pending, lag 0; screenshot {shot}")
    finally:
        worker.stop()
