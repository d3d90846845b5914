"""What every benchmark shares: the figure record, the broker, synthetic events, child processes."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

__all__ = ["Context", "Figure", "WorkerChild", "WorkerProcesses", "case_created_batch", "delete_run_topics", "rss_mib",
           "synthetic_cpr"]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    """One measured number. ``target`` is what we hope for, in words; it is never asserted."""

    bench: str
    metric: str
    value: float
    unit: str
    target: str = ""
    note: str = ""


@dataclass
class Context:
    bootstrap: str
    quick: bool
    partitions: int
    run_id: str
    workdir: Path
    sizes: dict[str, int] = field(default_factory=dict)

    def size(self, name: str, full: int, quick: int) -> int:
        value = int(self.sizes.get(name, quick if self.quick else full))
        self.sizes[name] = value
        return value


# Births from 1950 for 20,000 days (to October 2004): adults (at least 15, R1.5) on any date from 2020.
BORN_FROM = date(1950, 1, 1)
BORN_TO = BORN_FROM + timedelta(days=20000)


def synthetic_cpr(rng: random.Random) -> str:
    """A valid CPR number that belongs to no one (random birth date and sequence number, the 7th
    digit matching the birth year's century), born in ``[BORN_FROM, BORN_TO)``."""
    from dfdg.scenario import synthetic_cpr as generate  # imported here, like CaseCreated below: light children

    return generate(rng, BORN_FROM, BORN_TO)


def case_created_batch(n: int, seed: str, municipality: str = "851") -> list[tuple[str, object]]:
    """``n`` CaseCreated events for ``n`` distinct synthetic citizens: (cpr, event)."""
    from processors.events import CaseCreated

    rng = random.Random(seed)
    now = datetime.now(UTC)
    handover = date.today() + timedelta(days=30)
    out: list[tuple[str, object]] = []
    seen: set[str] = set()
    while len(out) < n:
        cpr = synthetic_cpr(rng)
        if cpr in seen:
            continue
        seen.add(cpr)
        out.append((cpr, CaseCreated(
            event_id=str(uuid.UUID(int=rng.getrandbits(128))), occurred_at=now, producer="dfdg-bench", cpr=cpr,
            case_id=f"case-{len(out)}", receiving_municipality=municipality, jobcenter_municipality=municipality,
            contact_group=18, handover_date=handover, cv_number="CV-1")))
    return out


async def delete_run_topics(bootstrap: str, run_id: str) -> list[str]:
    """Delete every topic of one benchmark run: each has ``run_id`` in its name (the workers'
    own, their changelogs, Quix Streams' repartition and changelog topics). A full run writes
    ~2.5 GB of them; kept, a few dozen runs filled this machine's disk and the broker stopped."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if run_id in t)
        for i in range(0, len(doomed), 50):
            await admin.delete_topics(doomed[i:i + 50])
        return doomed
    finally:
        await admin.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | None = None) -> float:
    """Resident set size from /proc (Linux), in MiB."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class WorkerChild:
    """The real worker (``dfdg worker``) as a child process, its log lines collected."""

    def __init__(self, bootstrap: str, app_id: str, data_dir: Path, partitions: int,
                 extra_env: Mapping[str, str] | None = None, repo: Path = REPO) -> None:
        # ``repo``: another checkout's worker (the drain benchmark's baseline), run the same way.
        self.repo = repo
        self.env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DFDG_APP_ID": app_id,
                    "DFDG_DATA_DIR": str(data_dir), "DFDG_DEV_MODE": "1", "DFDG_PARTITIONS": str(partitions),
                    "DFDG_WEB_PORT": "0", "PYTHONPATH": str(repo), **(extra_env or {})}
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.started_at = 0.0

    def start(self) -> WorkerChild:
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "dfdg.cli", "--log-format", "json", "worker"],
                                     env=self.env, cwd=self.repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float) -> float:
        """Seconds since start until a log line containing ``text`` appeared."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return time.monotonic() - self.started_at
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited before {text!r}:\n" + "\n".join(self.lines[-30:]))
            time.sleep(0.05)
        raise RuntimeError(f"worker did not log {text!r} within {timeout_s:.0f}s:\n" + "\n".join(self.lines[-30:]))

    def rss_mib(self) -> float:
        assert self.proc is not None
        return rss_mib(self.proc.pid)

    def stop(self) -> None:
        import signal

        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


# What each of the worker's processes logs once it is working. One process runs both steps
# (DFDG_ROLE left unset: the drain's baseline worker predates it); the split starts the steps,
# then the door (streams.door_process).
ONE_PROCESS: tuple[tuple[str | None, str], ...] = ((None, "deadline index rebuilt"),)
TWO_PROCESSES: tuple[tuple[str | None, str], ...] = (("steps", "deadline index rebuilt"),
                                                      ("door", "door partitions assigned"))


class WorkerProcesses:
    """The worker as one process, or as the door and the steps in two (``split``), started in
    order, each once it says it is working, and stopped together."""

    def __init__(self, bootstrap: str, app_id: str, workdir: Path, partitions: int, split: bool,
                 repo: Path = REPO) -> None:
        self.children = [
            (WorkerChild(bootstrap, app_id, workdir / f"{app_id}-{role or 'all'}", partitions,
                         None if role is None else {"DFDG_ROLE": role}, repo=repo), ready)
            for role, ready in (TWO_PROCESSES if split else ONE_PROCESS)]

    async def start(self, timeout_s: float = 180) -> None:
        for child, ready in self.children:
            child.start()
            await asyncio.to_thread(child.wait_for, ready, timeout_s)

    def pids(self) -> list[int]:
        return [child.proc.pid for child, _ in self.children if child.proc is not None]

    def stop(self) -> None:
        for child, _ in self.children:
            child.stop()
