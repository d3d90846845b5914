"""``dfdg demo`` end to end against the test broker: it exits 0 and its summary matches what
the topics hold, recounted here independently of ``dfdg.demo_count``."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from dfdg.scenario import build_scenario
from processors.routing import TOPIC_PREFIX
from schemas.codec import Codec
from schemas.records import Notification
from schemas.topics import DEAD_LETTER
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY

# It starts the demo against the test broker: run it with the other broker tests, not the pure ones.
pytestmark = pytest.mark.kafka


async def _all_records(bootstrap: str, prefix: str) -> dict[str, list[tuple[bytes | None, list[tuple[str, bytes]],
                                                                              bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        out: dict[str, list[tuple[bytes | None, list[tuple[str, bytes]], bytes]]] = {}
        for topic in sorted(t for t in metadata.topics() if t.startswith(prefix)):
            tps = [TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            rows = out.setdefault(topic, [])
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for records in (await consumer.getmany(*tps, timeout_ms=2000)).values():
                    rows.extend((r.key, list(r.headers or ()), r.value) for r in records)
        return out
    finally:
        await consumer.stop()


def test_demo_runs_small_and_its_summary_matches_the_topics(bootstrap: str, tmp_path: Path) -> None:
    seed = random.randrange(1, 10**9)  # fresh citizens, so earlier runs on this broker cannot be counted
    summary_path = tmp_path / "summary.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DFDG_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "dfdg.cli", "--log-format", "json", "demo", "--citizens", "40", "--days", "100",
         "--seconds", "20", "--seed", str(seed), "--summary-json", str(summary_path)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["lag_at_end"] == 0

    scenario = build_scenario(40, 100, seed)
    keys = {citizen_key(DEV_PSEUDONYM_KEY, cpr) for cpr in scenario.cprs}
    codec = Codec.default()
    notify = asyncio.run(_all_records(bootstrap, TOPIC_PREFIX + "."))
    by_role: Counter[str] = Counter()
    seen: set[str] = set()
    for topic, rows in notify.items():
        for key, _headers, value in rows:
            if (key or b"").decode() not in keys:
                continue
            n = codec.decode(value)
            assert isinstance(n, Notification)
            if n.notification_id not in seen:
                seen.add(n.notification_id)
                by_role[topic.split(".")[2]] += 1
    assert summary["notifications_by_role"] == dict(by_role)
    assert by_role["jobcenter"] > 0  # every registration tells the citizen's jobcentre (R10.1)

    letters = asyncio.run(_all_records(bootstrap, DEAD_LETTER))[DEAD_LETTER]
    codes = Counter(dict(headers).get("dlq.error.code", b"").decode() for _k, headers, _v in letters
                    if dict(headers).get("dlq.group", b"").decode() == summary["app_id"])
    assert summary["dead_letters_by_code"] == dict(codes)
    # The four bad-on-purpose events each reach the dead-letter topic with their own code.
    for code in ("E101 not-single-object", "E201 invalid-cpr", "E202 invalid-municipality",
                 "E203 invalid-contact-group"):
        assert codes[code] == 1, code
    assert summary["published"] == len(scenario.steps)
