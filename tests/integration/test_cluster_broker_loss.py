"""The pipeline on a replicated cluster: three local KRaft nodes (``dfdg broker start --nodes 3``),
the real worker, a few thousand cases whose handover date has passed flowing in, and one broker
killed with SIGKILL in the middle. Every notification the pure core owes arrives, by id; every
partition goes on (a live leader, the worker's group consumes to the end) with the same worker
process, which reconnects on its own; the killed broker, restarted, catches up until no
partition is under-replicated. The figures are printed in the run's summary.

Ports: ``DFDG_TEST_CLUSTER_PORT`` (default 29292; controllers on the port after each node's) and the
five after it, all below Linux's ephemeral range (32768-60999), so an outgoing connection's
local port never takes one before the cluster starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from dfdg.localbroker.cluster import LocalCluster
from dfdg.publisher import Publisher
from dfdg.subscriber import read_topic
from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from schemas.records import Notification
from schemas.topics import citizen_events_topic
from tests.integration.step_model import key_of, owed, passed_cases
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka

CODEC = Codec.default()
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
CASES = 3000
PARTITIONS = 3
TEST_CLUSTER_PORT = 29292  # +0..+5; below the ephemeral range (tests/test_test_ports.py)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    base = int(os.environ.get("DFDG_TEST_CLUSTER_PORT", str(TEST_CLUSTER_PORT)))
    home = Path(tempfile.mkdtemp(prefix="dfdg-test-cluster-"))
    cluster = LocalCluster(home=home, nodes=3, base_port=base)
    try:
        try:
            cluster.start()
        except Exception as exc:  # noqa: BLE001 - a failure with the reason, never a skip
            pytest.fail(f"the three-node test cluster did not start: {exc}")
        yield cluster
    finally:
        print("\n" + cluster.stop())
        shutil.rmtree(home, ignore_errors=True)


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    return admin


async def _partitions(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    admin = await _admin(bootstrap)
    try:
        return [p | {"topic": d["topic"]} for d in await admin.describe_topics(topics) for p in d["partitions"]]
    finally:
        await admin.close()


async def _min_isr(bootstrap: str, topics: list[str]) -> dict[str, str]:
    admin = await _admin(bootstrap)
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {"min.insync.replicas": None}) for t in topics])
    finally:
        await admin.close()
    return {res[3]: entry[1] for r in responses for res in r.resources for entry in res[4]}


async def _seen(bootstrap: str, recipients: set[str], keys: set[str]) -> set[str]:
    ids: set[str] = set()
    for recipient in sorted(recipients):
        async for _, _, value in read_topic(bootstrap, topic_for_subscriber(recipient), idle_timeout_s=0.5):
            record = CODEC.decode(value)
            if isinstance(record, Notification) and record.citizen_key in keys:
                ids.add(record.notification_id)
    return ids


def _publish_in_background(bootstrap: str, events: list[Any], sent: list[int]) -> threading.Thread:
    """Publish in chunks with short pauses, so events are still flowing when the broker dies."""

    async def run() -> None:
        async with Publisher(bootstrap) as publisher:
            for i, event in enumerate(events):
                await publisher.publish(event, wait=False)
                if i % 100 == 99:
                    await publisher.flush()
                    sent[0] = i + 1
                    await asyncio.sleep(0.15)
            await publisher.flush()
            sent[0] = len(events)

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


async def _wait(predicate: Any, timeout_s: float, what: str, poll_s: float = 1.0) -> float:
    """Seconds until ``await predicate()`` holds. A look that fails while the cluster fails over
    (the dead node still in metadata until the controller fences it) counts as "not yet"."""
    start = time.monotonic()
    last_error = ""
    while True:
        try:
            if await predicate():
                return time.monotonic() - start
        except (TimeoutError, KafkaError, OSError) as exc:
            last_error = f" (last look failed: {type(exc).__name__}: {exc})"
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} not within {timeout_s:.0f}s{last_error}")
        await asyncio.sleep(poll_s)


# pytest-timeout counts fixture setup: three JVMs starting (up to 120 s each to answer), the worker,
# 3000 cases, a killed broker's restart and catch-up do not fit the suite's 300 s.
@pytest.mark.timeout(900)
async def test_losing_one_of_three_brokers_under_load_loses_no_notification(
        cluster: LocalCluster, unique: str, tmp_path: Path, figures: Callable[[str], None]) -> None:
    bootstrap = cluster.bootstrap
    app_id = f"cluster-{unique}"
    cases = passed_cases(unique, CASES, NOW.date(), NOW)
    expected, keys = owed(cases, NOW), {key_of(c.cpr) for c in cases}
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w",
                           {"DFDG_NOW": NOW.isoformat(), "DFDG_ARCHIVE_INBOX": str(tmp_path / "inbox"),
                            "DFDG_PARTITIONS": str(PARTITIONS)}).start(ready_timeout_s=120)
    try:
        # The worker created its topics reading the broker count from the cluster.
        events_topic = citizen_events_topic(app_id)
        notify = sorted(topic_for_subscriber(r) for r in expected.recipients)
        watched = [events_topic, *notify]
        before = await _partitions(bootstrap, watched)
        assert {len(p["replicas"]) for p in before} == {3}, "replication factor 3 on three brokers"
        assert set((await _min_isr(bootstrap, watched)).values()) == {"2"}

        sent = [0]
        publishing = _publish_in_background(bootstrap, cases, sent)
        while sent[0] < CASES // 3:
            await asyncio.sleep(0.1)
        # The broker leading most of the citizen events' partitions dies without a shutdown.
        leaders = [p["leader"] for p in before if p["topic"] == events_topic]
        victim = cluster.node(max(set(leaders), key=leaders.count))
        seen_at_kill = len(await _seen(bootstrap, expected.recipients, keys))
        assert seen_at_kill < len(expected.notifications), "the kill must come while notifications are owed"
        killed_at = time.monotonic()
        pid = victim.kill()
        assert pid is not None and victim.pid() is None
        sent_at_kill = sent[0]
        alive = ",".join(b.bootstrap for b in cluster.brokers if b.node_id != victim.node_id)

        async def moved_on() -> bool:
            parts = await _partitions(alive, watched)
            led = all(p["leader"] not in (-1, victim.node_id) for p in parts)
            return led and len(await _seen(alive, expected.recipients, keys)) > seen_at_kill

        recovered_s = await _wait(moved_on, 90, "new leaders for every partition and new notifications")
        publishing.join(120)
        assert sent[0] == CASES

        async def all_delivered() -> bool:
            return expected.notifications <= await _seen(alive, expected.recipients, keys)

        try:
            await _wait(all_delivered, 120, "every owed notification", poll_s=2.0)
        finally:
            lost = expected.notifications - await _seen(alive, expected.recipients, keys)
            print(f"\n[three brokers] lost {len(lost)} of {len(expected.notifications)} owed notifications")
        drained_s = time.monotonic() - killed_at
        assert worker.proc is not None and worker.proc.poll() is None, (
            "the worker must reconnect on its own, not exit:\n" + worker.tail())

        # Every partition of the worker's input went on: its group consumed each to the end.
        async def consumed_to_end() -> bool:
            from streams.citizen_loop import citizen_group
            from streams.lag import collect_lag

            snapshot = await collect_lag(alive, [citizen_group(app_id)], "\x00")
            parts = [p for g in snapshot.groups for p in g.partitions if p.topic == events_topic]
            return len(parts) == PARTITIONS and all(p.committed_offset >= p.end_offset for p in parts)

        await _wait(consumed_to_end, 60, "the worker's group at the end of every citizen-events partition")

        await asyncio.to_thread(victim.start, 120.0)  # its own event loop: not inside this one

        async def caught_up() -> bool:
            parts = await _partitions(bootstrap, watched)
            return all(set(p["isr"]) == set(p["replicas"]) for p in parts)

        under = sum(set(p["isr"]) != set(p["replicas"]) for p in await _partitions(bootstrap, watched))
        catch_up_s = await _wait(caught_up, 120, "the restarted broker back in every ISR")
        figures(f"[three brokers] cases {CASES} (published {sent_at_kill} before the kill), notifications owed "
              f"{len(expected.notifications)}, lost {len(lost)}; node {victim.node_id} (pid {pid}) killed: "
              f"partitions led and notifications flowing again after {recovered_s:.1f}s, all delivered "
              f"{drained_s:.1f}s after the kill; restarted with {under} under-replicated partitions, "
              f"0 after {catch_up_s:.1f}s")
        assert not lost
    finally:
        worker.stop()
