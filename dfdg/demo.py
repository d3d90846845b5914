"""``dfdg demo``: the whole pipeline on a bundled scenario, in about a minute.

Starts the local broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), starts a worker with a fresh
app id whose shifted clock runs ``days`` days in about ``seconds`` seconds, publishes the
scenario as the clock reaches each event, acts as the archive's receiver, waits for the
window to pass and the lag to reach 0, stops the worker and prints what happened, counted
from the topics (``dfdg.demo_count``). The broker is left running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dfdg.demo_count import Counts, count_run, list_topics, mark
from dfdg.progress import Progress
from dfdg.scenario import Scenario, build_scenario
from schemas.topics import INGRESS_TOPICS
from streams.kafka_auth import client_config

__all__ = ["DemoError", "DemoOptions", "run_demo"]

# Faust takes several seconds to join its group: the clock starts this much wall time early,
# so the scenario's first day is not spent while the worker is still starting.
STARTUP_LEAD_S = 6.0
READY_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 60.0


class DemoError(RuntimeError):
    """The demo could not run to the end; the message says what failed."""


@dataclass(frozen=True)
class DemoOptions:
    citizens: int = 300
    days: int = 120
    seconds: float = 60.0
    seed: int = 2026
    keep_running: bool = False
    summary_json: Path | None = None


@dataclass
class _Published:
    sent: int = 0
    accepted: int = 0  # passed the client's own validation
    rejected: int = 0  # failed it (all bad on purpose: sent anyway so the pipeline's door refuses them)


def _home() -> Path:
    return Path(os.environ.get("DFDG_HOME", str(Path.home() / ".cache" / "dfdg")))


def _bootstrap() -> tuple[str, str]:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return servers, f"the cluster at {servers} (KAFKA_BOOTSTRAP_SERVERS)"
    from dfdg.localbroker import broker_from_env

    broker = broker_from_env()
    print("starting the local Kafka broker (if it is not running) ...", flush=True)
    broker.start()
    return broker.bootstrap, f"the local broker at {broker.bootstrap}"


def _fresh_run_dir(app_id: str) -> Path:
    """A data dir per run; older demo runs' dirs are removed (their worker is gone)."""
    root = _home() / "demo"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("dfdg-demo-*"):
        shutil.rmtree(old, ignore_errors=True)
    run_dir = root / app_id
    (run_dir / "archive-inbox").mkdir(parents=True)
    return run_dir


async def _prepare_kafka(bootstrap: str, app_id: str) -> int:
    """Topics exist, old demo apps' internal topics are gone, and the new app starts at the end
    of the shared ingress topics (not at their beginning, which holds every earlier run)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from dfdg.groups import start_group_at_end
    from streams.ingress_loop import door_group
    from streams.topics import ensure_topics, pipeline_topics

    partitions = int(os.environ.get("DFDG_PARTITIONS", "4"))
    await ensure_topics(bootstrap, pipeline_topics(partitions, app_id))
    stale = [t for t in await list_topics(bootstrap) if t.startswith("dfdg-demo-") and not t.startswith(app_id)]
    if stale:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_config())
        await admin.start()
        try:
            await admin.delete_topics(stale)
        finally:
            await admin.close()
    # The door's group (streams.ingress_loop) is the one that reads the ingress topics.
    await start_group_at_end(bootstrap, door_group(app_id), INGRESS_TOPICS)
    return partitions


class _Worker:
    """The worker as a child process in its own process group, its log in the run dir."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dfdg.cli", "--log-format", "json", "worker"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def find(self, text: str) -> dict[str, Any] | None:
        return next((x for x in self.lines() if x.get("event") == text), None)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise DemoError(f"the worker exited with code {self.proc.returncode}; its log ends:\n  "
                            + "\n  ".join(tail))

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


class _WorkerClock:
    """The worker's shifted clock, reconstructed from its start-up log line and the wall clock."""

    def __init__(self, worker_now: datetime, seen_at: float, speed: float) -> None:
        self.origin, self.seen_at, self.speed = worker_now, seen_at, speed

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.monotonic() - self.seen_at) * self.speed)

    def wall_until(self, when: datetime) -> float:
        return max((when - self.now()).total_seconds() / self.speed, 0.0)


async def _wait_ready(worker: _Worker, speed: float) -> _WorkerClock:
    deadline = time.monotonic() + READY_TIMEOUT_S
    clock: _WorkerClock | None = None
    while time.monotonic() < deadline:
        worker.check_alive()
        if clock is None and (line := worker.find("worker starting")):
            # The line's own timestamp, not when we read it: a poll's delay is days of shifted time.
            logged = datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()
            seen_at = time.monotonic() - max(time.time() - logged, 0.0)
            clock = _WorkerClock(datetime.fromisoformat(str(line["now"])), seen_at, speed)
        if clock is not None and worker.find("deadline index rebuilt"):
            return clock
        await asyncio.sleep(0.2)
    raise DemoError(f"the worker was not ready within {READY_TIMEOUT_S:.0f}s; see {worker.log_path}")


async def _publish(bootstrap: str, scenario: Scenario, clock: _WorkerClock, worker: _Worker) -> _Published:
    from dfdg.publisher import Publisher, PublishRejected

    result = _Published()
    progress = Progress(len(scenario.steps), "publishing")
    async with Publisher(bootstrap) as publisher:
        for step in scenario.steps:
            if (wait := clock.wall_until(step.at)) > 0:
                await publisher.flush()
                worker.check_alive()
                await asyncio.sleep(wait)
            if step.event is None:
                assert step.raw_topic is not None
                await publisher.publish_raw(step.raw_topic, step.raw_value)
                result.rejected += 1
            else:
                try:
                    publisher.check(step.event)
                    result.accepted += 1
                except PublishRejected:
                    result.rejected += 1
                    if not step.bypass_check:
                        progress.advance()
                        continue
                await publisher.publish(step.event, validate_first=False, wait=False)
            result.sent += 1
            progress.advance()
        await publisher.flush()
    progress.close()
    return result


async def _archive_receiver(bootstrap: str, inbox: Path, stop: asyncio.Event, app_id: str) -> list[object]:
    """The archive's side of R9.4, in-process: verify each package, publish receipt or rejection."""
    from dfdg.cmd_archive import kafka_publish, receive_and_publish
    from dfdg.publisher import Publisher

    outcomes: list[object] = []
    async with Publisher(bootstrap) as publisher:
        publish = kafka_publish(publisher, app_id=app_id)
        while True:
            outcomes += await receive_and_publish(inbox, publish)
            if stop.is_set():
                return outcomes
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def _lag(bootstrap: str, app_id: str) -> int:
    """Messages behind in the worker's two reading groups, the door's and the citizen step's
    (committed vs end offsets; no per-record ages, which ``streams.lag.collect_lag`` reads at up
    to seconds per call)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from streams.citizen_loop import citizen_group
    from streams.ingress_loop import door_group

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_config())
    await admin.start()
    committed: list[tuple[Any, int]] = []
    try:
        for group in (door_group(app_id), citizen_group(app_id)):
            offsets = await admin.list_consumer_group_offsets(group)
            committed += [(tp, m.offset) for tp, m in offsets.items() if m.offset >= 0]
    finally:
        await admin.close()
    if not committed:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **client_config())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(sorted({tp for tp, _ in committed}))
    finally:
        await consumer.stop()
    return sum(max(ends[tp] - off, 0) for tp, off in committed)


async def _drain(bootstrap: str, app_id: str, scenario: Scenario, clock: _WorkerClock, worker: _Worker) -> int:
    """Wait until the shifted clock has passed the window and the worker has nothing left to do:
    lag 0, or the same small lag three readings running (Faust commits a partition's last
    offset lazily; stopping the worker commits it, and the lag is measured again then)."""
    end = scenario.start + timedelta(days=scenario.days)
    await asyncio.sleep(clock.wall_until(end) + 1.0)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    history: list[int] = []
    while time.monotonic() < deadline:
        worker.check_alive()
        history.append(await _lag(bootstrap, app_id))
        if history[-1] == 0 or (len(history) >= 3 and len(set(history[-3:])) == 1 and history[-1] <= 8):
            return history[-1]
        await asyncio.sleep(1.0)
    raise DemoError(f"the worker's lag was still {history[-1] if history else '?'} message(s) "
                    f"{DRAIN_TIMEOUT_S:.0f}s after the window ended")


def _citizen_keys(scenario: Scenario) -> set[str]:
    from streams.pseudonym import citizen_key
    from streams.settings import DEV_PSEUDONYM_KEY

    return {citizen_key(DEV_PSEUDONYM_KEY, cpr) for cpr in scenario.cprs}


async def _run(options: DemoOptions, bootstrap: str, where: str) -> dict[str, Any]:
    app_id = f"dfdg-demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    run_dir = _fresh_run_dir(app_id)
    scenario = build_scenario(options.citizens, options.days, options.seed)
    speed = options.days * 86400.0 / options.seconds
    print(f"demo {app_id}: {options.citizens} citizens, {len(scenario.steps)} events, {options.days} days of "
          f"shifted time from {scenario.start:%Y-%m-%d} in ~{options.seconds:.0f}s, on {where}", flush=True)
    partitions = await _prepare_kafka(bootstrap, app_id)
    marks = await mark(bootstrap, app_id)
    env = {k: v for k, v in os.environ.items() if k not in ("DFDG_PSEUDONYM_KEY", "DFDG_PSEUDONYM_KEY_FILE")}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DFDG_APP_ID": app_id, "DFDG_DATA_DIR": str(run_dir / "data"),
        "DFDG_ARCHIVE_INBOX": str(run_dir / "archive-inbox"), "DFDG_DEV_MODE": "1",
        "DFDG_PARTITIONS": str(partitions), "DFDG_WEB_PORT": os.environ.get("DFDG_WEB_PORT", "0"),
        "DFDG_NOW": (scenario.start - timedelta(seconds=STARTUP_LEAD_S * speed)).isoformat(),
        "DFDG_CLOCK_SPEED": repr(speed),
    })
    started = time.monotonic()
    worker = _Worker(env, run_dir / "worker.log")
    stop_receiver = asyncio.Event()
    receiver: asyncio.Task[list[object]] | None = None
    try:
        clock = await _wait_ready(worker, speed)
        print(f"worker ready after {time.monotonic() - started:.1f}s (log: {worker.log_path})", flush=True)
        receiver = asyncio.create_task(_archive_receiver(bootstrap, run_dir / "archive-inbox", stop_receiver, app_id))
        published = await _publish(bootstrap, scenario, clock, worker)
        print("published; waiting for the shifted clock to pass the window and the lag to reach 0 ...", flush=True)
        await _drain(bootstrap, app_id, scenario, clock, worker)
        stop_receiver.set()
        outcomes = await receiver
        if options.keep_running:
            print(f"worker still running (pid {worker.proc.pid}); press Ctrl-C to stop it", flush=True)
            await _until_interrupted(worker)
    finally:
        stop_receiver.set()
        if receiver is not None and not receiver.done():
            receiver.cancel()
        worker.stop()
    lag = await _lag(bootstrap, app_id)
    if lag != 0:
        raise DemoError(f"the worker stopped with {lag} message(s) unprocessed")
    counts = await count_run(bootstrap, marks, _citizen_keys(scenario), app_id)
    return _summary(app_id, scenario, published, counts, outcomes, lag, time.monotonic() - started)


async def _until_interrupted(worker: _Worker) -> None:
    try:
        while worker.proc.poll() is None:
            await asyncio.sleep(1.0)
    except asyncio.CancelledError:
        pass


def _summary(app_id: str, scenario: Scenario, published: _Published, counts: Counts, outcomes: list[object],
             lag: int, elapsed: float) -> dict[str, Any]:
    from schemas.archive_records import ArchiveReceipt

    receipts = sum(isinstance(o, ArchiveReceipt) for o in outcomes)
    return {
        "app_id": app_id, "citizens": len(scenario.cprs), "days": scenario.days, "seconds": round(elapsed, 1),
        "scenario_events": len(scenario.steps), "published": published.sent,
        "accepted_client_side": published.accepted, "rejected_client_side": published.rejected,
        "packages_archived": receipts, "packages_rejected_by_archive": len(outcomes) - receipts,
        **counts.to_dict(), "lag_at_end": lag,
    }


def _print(summary: dict[str, Any]) -> None:
    s = summary
    print(f"\n=== dfdg demo {s['app_id']}: {s['citizens']} citizens, {s['days']} days in {s['seconds']}s ===")
    print(f"events published           {s['published']:>6}  (client check: {s['accepted_client_side']} accepted, "
          f"{s['rejected_client_side']} rejected, sent anyway to exercise the door)")
    print(f"events in (admitted)       {s['events_in']:>6}  + {s['deadlines_fired']} deadlines fired")
    print(f"notifications              {s['notifications']:>6}")
    for role, n in s["notifications_by_role"].items():
        print(f"  {role:<24} {n:>6}")
    print(f"data areas closed          {s['data_areas_closed']:>6}")
    print(f"packages archived          {s['packages_archived']:>6}  (rejected by the archive: "
          f"{s['packages_rejected_by_archive']})")
    print(f"citizens deleted           {s['citizens_deleted']:>6}")
    print(f"dead letters               {s['dead_letters']:>6}")
    for code, n in s["dead_letters_by_code"].items():
        print(f"  {code:<24} {n:>6}")
    print(f"lag at end                 {s['lag_at_end']:>6}")
    print("\nthe broker is still running: `dfdg broker stop` stops it; "
          "`dfdg dead-letters list` shows the dead letters")


def run_demo(options: DemoOptions) -> int:
    """Run the demo; 0 when it ran to the end with lag 0, 1 with a message otherwise."""
    try:
        logging.getLogger("bagit").setLevel(logging.WARNING)  # a line per verified file otherwise
        bootstrap, where = _bootstrap()  # before the event loop: the broker manager runs its own
        summary = asyncio.run(_run(options, bootstrap, where))
    except DemoError as exc:
        print(f"dfdg demo failed: {exc}", file=sys.stderr)
        return 1
    _print(summary)
    if options.summary_json is not None:
        options.summary_json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 0
