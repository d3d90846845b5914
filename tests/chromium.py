"""Headless Chromium for the live-page tests, and where their screenshots are kept.

Chromium comes from the system's packages: `make test` installs Debian's when run as root with
apt-get, or stops at once with the command that installs it. A test run without it fails here
with the same command; it is never skipped.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

# Kept by CI (.ci/run prints the path): the live page's screenshots.
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not on PATH; the live-page tests need it: sudo apt-get install -y chromium")
    return path


async def chromium_run(*args: str, budget_ms: int = 5000) -> str:
    """Run headless Chromium (``--dump-dom URL``, ``--screenshot=FILE URL``); its stdout."""
    with tempfile.TemporaryDirectory(prefix="dfdg-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")
