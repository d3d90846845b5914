"""``dfdg archive``: verify an archival package, or act as the archive's receiver (R9.4).

``archive verify <package-dir>`` validates a bag and prints what it holds (counts, case types,
period) from its metadata only, never personal data. ``archive receive`` verifies new bags in
the inbox and prints one receipt or rejection per bag; ``receive_and_publish`` is the same with
each outcome handed to a publisher (``--publish``: ``dfdg.archive-receipts``, see ``kafka_publish``) before the
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

from dfdg.publisher import Publisher
from schemas.archive_records import ArchiveReceipt
from schemas.codec import Codec
from schemas.topics import ARCHIVE_RECEIPTS, archive_receipts_topic
from sinks.archive_receiver import Outcome, scan, settle, verify

__all__ = ["DEFAULT_INBOX", "kafka_publish", "receive_and_publish", "register", "run_receive", "run_verify"]

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
    r.add_argument("--publish", action="store_true",
                   help=f"also publish each receipt or rejection to {ARCHIVE_RECEIPTS} (the worker waits for them)")
    r.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                   help="Kafka bootstrap servers for --publish ($KAFKA_BOOTSTRAP_SERVERS)")
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


def kafka_publish(publisher: Publisher, codec: Codec | None = None,
                  app_id: str | None = None) -> Callable[[Outcome], Awaitable[None]]:
    """A ``publish`` for ``receive_and_publish``: the outcome on the app's archive-receipts topic
    (``DFDG_APP_ID``, default ``dfdg``), keyed by the pseudonymous citizen key so it reaches the
    partition (and worker) that holds the saga."""
    use = codec or Codec.default()
    topic = archive_receipts_topic(app_id or os.environ.get("DFDG_APP_ID", "dfdg"))

    async def publish(outcome: Outcome) -> None:
        await publisher.publish_raw(topic, use.encode(outcome), key=outcome.citizen_key.encode(),
                                    headers=list(use.headers_for(outcome)))

    return publish


def run_receive(args: argparse.Namespace) -> int:
    """One pass (``--once``) or a pass every ``--interval`` seconds until interrupted; 1 if any rejection."""

    async def loop() -> int:
        if not args.publish:
            return await passes(_print)
        async with Publisher(args.bootstrap) as publisher:
            to_kafka = kafka_publish(publisher)

            async def both(outcome: Outcome) -> None:
                await to_kafka(outcome)
                await _print(outcome)

            return await passes(both)

    async def passes(publish: Callable[[Outcome], Awaitable[None]]) -> int:
        rejected = False
        while True:
            outcomes = await receive_and_publish(args.inbox, publish)
            rejected = rejected or any(not isinstance(o, ArchiveReceipt) for o in outcomes)
            if args.once:
                return 1 if rejected else 0
            await asyncio.sleep(args.interval)

    try:
        return asyncio.run(loop())
    except KeyboardInterrupt:
        return 0
