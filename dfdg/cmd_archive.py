"""``dfdg archive``: verify an archival package, or act as the archive's receiver (R9.4).

``archive verify <package-dir>`` validates a bag and prints what it holds (counts, case types,
period) from its metadata only, never personal data. ``archive receive`` verifies new bags in
the inbox and prints one receipt or rejection per bag; ``receive_and_publish`` is the same with
each outcome handed to a publisher (``--publish``: ``dfdg.archive-receipts``, see ``kafka_publish``) before the
bag is moved, so a crash can repeat an outcome but never lose one. ``archive retry <package>``
asks the worker to deliver a package again once an operator has dealt with the cause (R7.2): a
saga whose package the archive rejected, or whose receipt it refused (E308) or that never saw a
receipt (``delivered``: the archive sends none for a bag it has received), waits for exactly this.
The worker answers by delivering, or with a dead letter (E309) when the request matches no saga.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit

from dfdg.publisher import Publisher
from processors.archive_retry import RETRY_BY_OPERATOR
from processors.model import deterministic_id
from schemas.archive_records import ArchiveReceipt, ArchiveRetry
from schemas.codec import Codec
from schemas.topics import ARCHIVE_RECEIPTS, archive_receipts_topic
from sinks.archive_bag import RECEIVED_DIR, REJECTED_DIR
from sinks.archive_receiver import Outcome, scan, settle, verify

__all__ = [
    "DEFAULT_INBOX",
    "citizen_key_of_package",
    "kafka_publish",
    "receive_and_publish",
    "register",
    "retry_request",
    "run_receive",
    "run_retry",
    "run_verify",
]

DEFAULT_INBOX = os.environ.get("DFDG_ARCHIVE_INBOX", "archive-inbox")
# What streams.pseudonym.citizen_key makes: 32 hex digits of an HMAC, never a CPR.
_CITIZEN_KEY = re.compile(r"[0-9a-f]{32}")
# What processors.archival.package_id_for makes: a UUID, never a CPR.
_PACKAGE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
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
    t = sub.add_parser("retry", help="deliver a rejected, receipt-refused or never-receipted package again, "
                                         "its cause dealt with")
    t.add_argument("package_id", help="the package id (the directory name under <inbox>/rejected/ or received/)")
    t.add_argument("--inbox", type=Path, default=Path(DEFAULT_INBOX), help="archive inbox ($DFDG_ARCHIVE_INBOX)")
    t.add_argument("--citizen-key", default=None,
                   help="pseudonymous citizen key (32 hex digits); read from the package's bag-info.txt "
                        "under <inbox>/rejected/ or received/ when left out")
    t.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                   help="Kafka bootstrap servers ($KAFKA_BOOTSTRAP_SERVERS)")
    t.set_defaults(func=run_retry)
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


def citizen_key_of_package(inbox: Path, package_id: str) -> str | None:
    """The pseudonymous citizen key in the bag-info.txt of a rejected package (newest copy first),
    or else of a received one (a receipt the worker refused, E308), if readable."""
    copies: list[Path] = []
    for folder in (inbox / RECEIVED_DIR, inbox / REJECTED_DIR):  # rejected last: tried first
        found = sorted(folder.glob(f"{package_id}*"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        copies += [p for p in found if p.name == package_id or p.name.startswith(f"{package_id}.")]
    for path in reversed(copies):
        info = path / "bag-info.txt"
        if info.is_file():
            for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
                name, _, value = line.partition(":")
                if name.strip() == "DFDG-Citizen-Key" and value.strip():
                    return value.strip()
    return None


def retry_request(package_id: str, citizen_key: str, now: datetime | None = None) -> ArchiveRetry:
    """An operator's retry for ``package_id``. Its id is derived from the package id, ``operator`` and
    the instant of the request (``requested_at``): the same inputs give the same id, and each run of
    the command is a new request (an operator may retry twice)."""
    when = now or datetime.now(UTC)
    # To the millisecond, as requested_at travels (timestamp-millis): the id can be derived again from the record.
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    return ArchiveRetry(retry_id=deterministic_id("archive-retry", package_id, RETRY_BY_OPERATOR, when.isoformat()),
                        package_id=package_id, citizen_key=citizen_key, requested_by=RETRY_BY_OPERATOR,
                        requested_at=when)


def run_retry(args: argparse.Namespace) -> int:
    """Publish an operator's ArchiveRetry to the archive-receipts topic; 2 if the package id or the
    citizen key is not shaped like one, or the key is unknown (a CPR typed there must never reach a
    topic, nor be printed back: the messages name the field, never the value)."""
    if not _PACKAGE_ID.fullmatch(args.package_id):
        print("package_id must be the package id (a UUID, as in the saga's log lines or the directory name under "
              f"{args.inbox / RECEIVED_DIR} or {args.inbox / REJECTED_DIR}); nothing was sent")
        return 2
    key = args.citizen_key or citizen_key_of_package(args.inbox, args.package_id)
    if not key:
        print(f"package {args.package_id}: no copy under {args.inbox / REJECTED_DIR} or "
              f"{args.inbox / RECEIVED_DIR}; give --citizen-key")
        return 2
    if not _CITIZEN_KEY.fullmatch(key):
        print("--citizen-key must be the pseudonymous citizen key (32 lowercase hex digits, as in the dead letter's "
              "key or the package's DFDG-Citizen-Key); nothing was sent")
        return 2
    request = retry_request(args.package_id, key)

    async def send() -> None:
        codec = Codec.default()
        topic = archive_receipts_topic(os.environ.get("DFDG_APP_ID", "dfdg"))
        async with Publisher(args.bootstrap) as publisher:
            await publisher.publish_raw(topic, codec.encode(request), key=key.encode(),
                                        headers=list(codec.headers_for(request)))

    asyncio.run(send())
    # Requested, not done: the worker delivers, or dead-letters a request that matches no saga (E309).
    print(json.dumps({"retry": args.package_id, "retry_id": request.retry_id, "status": "requested"}))
    return 0
