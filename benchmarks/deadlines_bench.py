"""Deadlines: memory of the index with 1M pending, rebuild time, and firing 100k due at once.

Measured in a child process (``benchmarks.deadlines_child``) so the RSS is not the runner's.
The real worker's figure adds Faust, the RocksDB table and the codec to this (see the
recovery benchmark for a worker holding the state of many citizens)."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import REPO, Context, Figure

__all__ = ["run"]


def run(ctx: Context) -> list[Figure]:
    pending = ctx.size("deadlines_pending", 1_000_000, 100_000)
    due = ctx.size("deadlines_due", 100_000, 10_000)
    out = subprocess.run([sys.executable, "-m", "benchmarks.deadlines_child", str(pending), str(due)], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=900)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    fire_s = r["pop_s"] + r["encode_s"]
    return [
        Figure("deadlines", "process RSS holding index", r["rss_mib"], "MiB", "< 1024 MiB (worker, 1M pending)",
               f"{r['pending']} pending, one per citizen"),
        Figure("deadlines", "index memory (RSS growth)", r["index_mib"], "MiB", note="after the rows are freed"),
        Figure("deadlines", "rebuild index from rows", r["rebuild_s"], "s", note="'ready after restart', in-process"),
        Figure("deadlines", "rebuild rate", r["pending"] / r["rebuild_s"], "rows/s"),
        Figure("deadlines", f"pop {r['popped']} due", r["pop_s"], "s"),
        Figure("deadlines", f"pop + encode {r['popped']} DeadlineDue", fire_s, "s", "< 30 s for 100k",
               "in-process; the send to Kafka is not included"),
    ]
