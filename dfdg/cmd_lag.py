"""``dfdg lag``: committed offset, log-end offset, lag and Burrow status of the pipeline's groups."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from streams.lag import LagReport, LagTracker, collect_lag

__all__ = ["format_table", "register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``lag`` command to the CLI's subparsers; it dispatches to ``args.func(args) -> int``."""
    p = subparsers.add_parser("lag", help="consumer lag of the pipeline's groups, with Burrow-style status")
    p.add_argument("--group", "-g", action="append", default=[], help="also show this group (repeatable)")
    p.add_argument("--prefix", default=os.environ.get("DFDG_APP_ID", "dfdg"),
                   help="show groups whose id starts with this (default: the app id, $DFDG_APP_ID or dfdg)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.add_argument("--watch", action="store_true", help="refresh every --interval seconds until Ctrl-C")
    p.add_argument("--json", action="store_true", help="JSON (with --watch: one document per line)")
    p.add_argument("--window", type=int, default=10, help="observations in the evaluation window (default 10)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes with --watch")
    p.set_defaults(func=run)
    return p


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def format_table(report: LagReport) -> str:
    """A readable table: one block per group, one row per partition."""
    stamp = datetime.fromtimestamp(report.taken_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"consumer lag at {stamp} - overall {report.status.value}"]
    if not report.groups:
        lines.append("(no consumer groups matched)")
    header = ("TOPIC", "PART", "COMMITTED", "END", "LAG", "LAG-TIME", "STATUS")
    for g in report.groups:
        lines.append("")
        lines.append(f"group {g.group}  state={g.state} members={g.members} lag={g.total_lag} status={g.status.value}")
        if g.error:
            lines.append(f"  error: {g.error}")
        rows = [header] + [
            (p.observed.topic, str(p.observed.partition), str(p.observed.committed_offset), str(p.observed.end_offset),
             str(p.observed.lag), _fmt_seconds(p.observed.lag_seconds), p.status.value)
            for p in g.partitions
        ]
        if len(rows) == 1:
            lines.append("  (no committed offsets)")
            continue
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


async def _loop(args: argparse.Namespace, out: TextIO) -> int:
    tracker = LagTracker(window=args.window)
    while True:
        snapshot = await collect_lag(args.bootstrap, args.group, args.prefix)
        report = tracker.observe(snapshot)
        if args.json:
            out.write(json.dumps(report.to_dict(), separators=(",", ":") if args.watch else None) + "\n")
        else:
            if args.watch and out.isatty():
                out.write("\x1b[2J\x1b[H")
            out.write(format_table(report) + "\n")
        out.flush()
        if not args.watch:
            return 0
        await asyncio.sleep(args.interval)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``dfdg lag``; 0 on success, 1 when Kafka cannot be reached."""
    try:
        return asyncio.run(_loop(args, sys.stdout))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - an operator tool says why and exits non-zero
        print(f"dfdg lag: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
