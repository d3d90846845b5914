"""Run the real worker (``dfdg worker``) as a child process against the test broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from dfdg.groups import start_group_at_end
from schemas.topics import INGRESS_TOPICS
from streams.ingress_loop import door_group
from streams.kafka_auth import client_config


def _in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to the end from sync code, even when called inside a running loop."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0] if result else None


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

class WorkerProcess:
    def __init__(self, bootstrap: str, app_id: str, data_dir: Path, extra_env: Mapping[str, str] | None = None,
                 args: tuple[str, ...] = (), ready_line: str = "deadline index rebuilt") -> None:
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DFDG_APP_ID": app_id,
            "DFDG_DATA_DIR": str(data_dir),
            "DFDG_DEV_MODE": "1",
            "DFDG_PARTITIONS": "2",
            "DFDG_WEB_PORT": "0",
            **(extra_env or {}),
        }
        self.args = args
        # What the process logs once it is working ("door partitions assigned" for DFDG_ROLE=door).
        self.ready_line = ready_line
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, ready_timeout_s: float = 90.0, restart: bool = False) -> WorkerProcess:
        # Tests share one broker and its ingress topics: a new app starts at their end, so it
        # never replays earlier tests' events. A restart keeps the app's offsets, and must not
        # touch them: a killed static member may still hold the group, which then refuses an
        # outsider's commit, and the app may not have committed anything yet.
        if not restart:
            _in_thread(start_group_at_end(self.env["KAFKA_BOOTSTRAP_SERVERS"], door_group(self.env["DFDG_APP_ID"]),
                                          INGRESS_TOPICS, client_config(self.env)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dfdg.cli", "--log-format", "json", "worker", *self.args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self._pid_file().write_text(str(self.proc.pid))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.wait_for(self.ready_line, ready_timeout_s)
        except AssertionError:
            self.kill()  # a worker that never became ready is not left running after its test
            raise
        return self

    def _pid_file(self) -> Path:
        """Where .ci/run finds this worker to stop it by pid if a run is killed before stop()."""
        assert self.proc is not None
        folder = Path(tempfile.gettempdir()) / "dfdg-test-workers"
        folder.mkdir(exist_ok=True)
        return folder / f"{self.proc.pid}.pid"

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, object]]:
        """The worker's JSON log lines. Faust's terminal handling can put an escape sequence
        (e.g. ``ESC[?25h``) in front of a line; it is stripped, not the line dropped."""
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(_ANSI.sub("", line)))
            except ValueError:
                continue
        return out

    def wait_for(self, text: str, timeout_s: float, count: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(text in line for line in list(self.lines)) >= count:
                return
            if self.proc is not None and self.proc.poll() is not None:
                if self._reader is not None:
                    self._reader.join(5)  # its last lines, the one looked for among them maybe
                if sum(text in line for line in list(self.lines)) >= count:
                    return
                raise AssertionError(f"worker exited ({self.proc.returncode}) before {text!r}:\n" + self.tail())
            time.sleep(0.2)
        raise AssertionError(f"worker did not log {text!r} within {timeout_s}s:\n" + self.tail())

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._pid_file().unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush anything."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._pid_file().unlink(missing_ok=True)  # also after a crash of its own (a crash point)
