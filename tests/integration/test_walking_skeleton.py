"""Issue 2's walking skeleton against the real broker: publish case-created, the worker turns it
into a notification on the receiving municipality's jobcentre topic, a subscriber reads it."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import Subscriber
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka


async def test_r1_1_case_created_reaches_the_jobcentre_through_the_real_broker(bootstrap: str, unique: str,
                                                                                tmp_path: Path) -> None:
    rng = random.Random(unique)
    cpr = synthetic_cpr(rng)
    worker = WorkerProcess(bootstrap, f"dfdg-skeleton-{unique}", tmp_path / "worker").start()
    try:
        handover = date.today() + timedelta(days=30)
        event = event_from_json("case-created", {
            "cpr": cpr, "case_id": f"case-{unique}", "receiving_municipality": "851",
            "jobcenter_municipality": "851", "contact_group": 18, "handover_date": handover.isoformat(),
            "cv_number": "CV-1",
        })
        async with Publisher(bootstrap) as publisher:
            await publisher.publish(event)
        key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
        received = []
        async with Subscriber("jobcenter:851", bootstrap, group_id=f"jobcenter.851.test-{unique}") as sub:
            for _ in range(60):
                async for n in sub.notifications(idle_timeout_s=1.0):
                    if n.citizen_key == key:
                        received.append(n)
                if received:
                    break
            assert [n.kind for n in received] == ["case-created"]
            assert received[0].recipient == "jobcenter:851"
            assert received[0].cause_event_id == event.event_id
            # The recipient needs the CPR to act: sealed on the topic, opened with its own key.
            assert cpr.encode() not in (received[0].personal or b"")
            assert await sub.personal(received[0]) == {"cpr": cpr}
    finally:
        worker.stop()
    assert cpr not in "\n".join(worker.lines), "a CPR appeared in the worker's log"


def test_cli_subscribe_prints_the_notification_as_json(bootstrap: str, unique: str, tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    worker = WorkerProcess(bootstrap, f"dfdg-cli-{unique}", tmp_path / "worker").start()
    env = {**worker.env}
    case_json = (f'{{"cpr":"{cpr}","case_id":"case-{unique}","receiving_municipality":"147",'
                 f'"jobcenter_municipality":"147","contact_group":27,"handover_date":"{date.today().isoformat()}",'
                 f'"cv_number":"CV-9","event_id":"{uuid.uuid4()}"}}')
    try:
        published = subprocess.run([sys.executable, "-m", "dfdg.cli", "publish", "case-created", "--json", case_json,
                                    "--bootstrap", bootstrap], env=env, capture_output=True, text=True, timeout=60)
        assert published.returncode == 0, published.stderr
        key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
        for _ in range(30):
            out = subprocess.run([sys.executable, "-m", "dfdg.cli", "subscribe", "jobcenter:147", "--from-beginning",
                                  "--json", "--bootstrap", bootstrap], env=env, capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
            if key in out.stdout:
                break
        mine = [line for line in out.stdout.splitlines() if key in line]
        assert mine and "\"kind\": \"case-created\"" in mine[0], worker.tail()
    finally:
        worker.stop()
