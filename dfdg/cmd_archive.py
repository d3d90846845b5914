"""``dfdg archive``: verify an archival package, or act as the archive's receiver (R9.4).

``archive verify <package-dir>`` validates a bag and prints what it holds (counts, case types,
period) from its metadata only, never personal data. ``archive receive`` verifies new bags in
the inbox and prints one receipt or rejection per bag; ``receive_and_publish`` is the same with
each outcome handed to a publisher (the lead wires it to ``dfdg.archive-receipts``) before the
bag is moved, so a crash can repeat an outcome but never lose one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bagit

from schemas.archive_records import ArchiveReceipt
from sinks.archive_receiver import Outcome, scan, settle, verify

__all__ = ["DEFAULT_INBOX", "receive_and_publish", "register", "run_receive", "run_verify"]

DEFAULT_INBOX = os.environ.get("DFDG_ARCHIVE_INBOX", "archive-inbox")
# Metadata fields safe to print: none of them holds personal data.
_SHOWN = ("Package-Id", "Case-Count", "Case-Types", "Programmes", "Period-Start", "Period-End", "Payload-Oxum")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``archive verify`` and ``archive receive``; they dispatch to ``args.func(args) -> int``."""
    p = subparsers.add_parser("archive", help="archival packages (BagIt): verify one, or receive an inbox")
    sub = p.add_subparsers(dest="archive_command", required=True)
    v = sub.add_parser("verify", help="validate a package and print counts, case types and period")
    v.add_argument("package_dir", type=Path)
    v.set_defaults(func=run_verify)
    r = sub.add_parser("receive", help="verify new packages in the inbox; print a receipt or rejection for each")
    r.add_argument("--inbox", type=Path, default=Path(DEFAULT_INBOX), help="archive inbox ($DFDG_ARCHIVE_INBOX)")
    r.add_argument("--once", action="store_true", help="one pass over the inbox, then exit")
    r.add_argument("--interval", type=float, default=5.0, help="seconds between passes without --once")
    r.set_defaults(func=run_receive)
    return p


def run_verify(args: argparse.Namespace) -> int:
    """Print whether the package validates and what its metadata says; 0 if valid, 1 if not."""
    path: Path = args.package_dir
    outcome = verify(path)
    valid = isinstance(outcome, ArchiveReceipt)
    print(f"package {path.name}: {'valid' if valid else 'INVALID'}")
    if not valid:
        print(f"  reason: {outcome.reason}")
    try:
        bag = bagit.Bag(str(path))
    except bagit.BagError:
        return 1
    for key in _SHOWN:
        if key in bag.info:
            print(f"  {key}: {bag.info[key]}")
    payload = list(bag.payload_files())
    print(f"  payload files: {len(payload)}, manifests: {', '.join(sorted(bag.algorithms))}")
    return 0 if valid else 1


def _line(outcome: Outcome) -> str:
    if isinstance(outcome, ArchiveReceipt):
        body = {"receipt": outcome.package_id, "tagmanifest_sha256": outcome.tagmanifest_sha256}
    else:
        body = {"rejected": outcome.package_id, "reason": outcome.reason}
    return json.dumps(body)


async def receive_and_publish(inbox: Path, publish: Callable[[Outcome], Awaitable[None]]) -> list[Outcome]:
    """Verify each new bag, publish its receipt or rejection, then move it to received/ or rejected/."""
    outcomes: list[Outcome] = []
    for path, outcome in await asyncio.to_thread(scan, inbox):
        await publish(outcome)  # published before the move: a crash repeats it, never loses it
        await asyncio.to_thread(settle, inbox, path, outcome)
        outcomes.append(outcome)
    return outcomes


async def _print(outcome: Outcome) -> None:
    print(_line(outcome), flush=True)


def run_receive(args: argparse.Namespace) -> int:
    """One pass (``--once``) or a pass every ``--interval`` seconds until interrupted; 1 if any rejection."""

    async def loop() -> int:
        rejected = False
        while True:
            outcomes = await receive_and_publish(args.inbox, _print)
            rejected = rejected or any(not isinstance(o, ArchiveReceipt) for o in outcomes)
            if args.once:
                return 1 if rejected else 0
            await asyncio.sleep(args.interval)

    try:
        return asyncio.run(loop())
    except KeyboardInterrupt:
        return 0
