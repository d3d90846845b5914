"""The archive's side of delivery (R9.4): verify each new bag, then receipt or reject it.

A receipt is issued only for a bag that validates (every payload and tag checksum, Payload-Oxum,
completeness). It names exactly what was verified: the SHA-256 of the bag's tag manifest. A bag
that fails gets a rejection and no receipt, and is moved to ``rejected/`` so it is not retried
forever; a receipted bag moves to ``received/``. ``scan`` only looks and ``settle`` only moves,
so a caller can publish an outcome before settling it: a crash in between repeats the outcome
(the saga ignores a second receipt for the same package), it never loses one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import bagit

from processors.model import deterministic_id
from schemas.archive_records import ArchiveReceipt, ArchiveRejected
from sinks.archive_bag import RECEIVED_DIR, REJECTED_DIR

__all__ = ["Outcome", "pending_bags", "receive", "scan", "settle", "verify"]

Outcome = ArchiveReceipt | ArchiveRejected
_MAX_REASON = 500


def pending_bags(inbox: Path) -> list[Path]:
    """Bags waiting in the inbox: every directory except temporaries and the settled folders."""
    if not inbox.is_dir():
        return []
    skip = {RECEIVED_DIR, REJECTED_DIR}
    return sorted(p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in skip)


def _info(path: Path) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in bagit.Bag(str(path)).info.items()}
    except (bagit.BagError, OSError, UnicodeDecodeError):
        return {}


def verify(path: Path, now: datetime | None = None) -> Outcome:
    """Validate one bag; a receipt if it is intact, otherwise a rejection with the reason."""
    when = now or datetime.now(UTC)
    package_id = path.name
    info = _info(path)
    citizen_key = info.get("DFDG-Citizen-Key", "")
    try:
        bag = bagit.Bag(str(path))
        bag.validate()
        if info.get("Package-Id") != package_id:
            raise bagit.BagValidationError("Package-Id in bag-info.txt does not match the package directory")
        if not {"sha256", "sha512"} <= set(bag.algorithms):
            raise bagit.BagValidationError("the bag lacks a sha256 or a sha512 manifest")
    except (bagit.BagError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:_MAX_REASON]
        return ArchiveRejected(
            rejection_id=deterministic_id("archive-rejected", package_id, reason),
            package_id=package_id,
            citizen_key=citizen_key,
            reason=reason,
            rejected_at=when,
        )
    digest = hashlib.sha256((path / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    return ArchiveReceipt(
        receipt_id=deterministic_id("archive-receipt", package_id, digest),
        package_id=package_id,
        citizen_key=citizen_key,
        tagmanifest_sha256=digest,
        payload_oxum=info.get("Payload-Oxum", ""),
        received_at=when,
    )


def scan(inbox: Path, now: datetime | None = None) -> list[tuple[Path, Outcome]]:
    """Verify every pending bag without moving anything."""
    return [(path, verify(path, now)) for path in pending_bags(inbox)]


def _free_target(folder: Path, name: str) -> Path:
    target, n = folder / name, 1
    while target.exists():
        target, n = folder / f"{name}.{n}", n + 1
    return target


def settle(inbox: Path, path: Path, outcome: Outcome) -> Path:
    """Move a verified bag to ``received/`` or a failed one to ``rejected/``; returns where it went."""
    folder = inbox / (RECEIVED_DIR if isinstance(outcome, ArchiveReceipt) else REJECTED_DIR)
    folder.mkdir(exist_ok=True)
    target = _free_target(folder, path.name)
    path.rename(target)
    return target


def receive(inbox: Path, now: datetime | None = None) -> list[Outcome]:
    """Verify and settle every new bag in ``inbox``: a receipt per valid bag, a rejection per invalid one."""
    outcomes: list[Outcome] = []
    for path, outcome in scan(inbox, now):
        settle(inbox, path, outcome)
        outcomes.append(outcome)
    return outcomes
