"""Deliver an archival package (R9.4) as a BagIt bag (RFC 8493) into the archive's inbox.

The bag is built in a temporary directory inside the inbox and renamed to ``<package_id>/`` in
one step, so the archive never sees half a package. The directory is named by the package id,
never by a CPR. Delivering the same package id again is a no-op while the archive holds a valid
copy (in the inbox or under ``received/``), so the archive sees one package however often the
saga retries (R7.2).

Layout::

    <package_id>/bagit.txt, bag-info.txt, manifest-sha256.txt, manifest-sha512.txt, tagmanifest-*.txt
    <package_id>/data/cases.jsonl       one archived case per line (ISO-8601 dates)
    <package_id>/data/cases.avro        the same records, an Avro container file
    <package_id>/data/schemas/*.avsc    the Avro schemas the records were written with
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

import bagit
from fastavro import parse_schema, writer

from processors.archival import ArchivedCase as CaseContent
from processors.archival import PackageContent
from schemas.archive_records import ArchivedCase
from schemas.catalogue import SCHEMA_DIR
from schemas.convert import to_avro

__all__ = [
    "CHECKSUMS",
    "RECEIVED_DIR",
    "REJECTED_DIR",
    "ArchiveSinkError",
    "Delivery",
    "PackageConflictError",
    "archived_case_records",
    "deliver",
    "delivered_checksum",
    "tagmanifest_sha256",
]

CHECKSUMS = ("sha256", "sha512")
RECEIVED_DIR = "received"
REJECTED_DIR = "rejected"


class ArchiveSinkError(Exception):
    """Root error of the archive sink."""


class PackageConflictError(ArchiveSinkError):
    """A package with this id is in the inbox but does not validate: someone must look at it."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the package is and whether this call wrote it (False: it was already there)."""

    package_id: str
    path: Path
    written: bool
    payload_oxum: str
    # SHA-256 of the bag's tag manifest: what the archive's receipt must name (R7.2).
    tagmanifest_sha256: str = ""


def archived_case_records(content: PackageContent) -> tuple[ArchivedCase, ...]:
    """The package's cases as the ``ArchivedCase`` records written into it."""
    return tuple(_record(content, case) for case in content.cases)


def _record(content: PackageContent, case: CaseContent) -> ArchivedCase:
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(CaseContent)}
    return ArchivedCase(package_id=content.package_id, cpr=content.cpr, **fields)


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return value


def _bag_info(content: PackageContent) -> dict[str, str]:
    start, end = content.period
    # Metadata only: no CPR, no name; the pseudonymous key lets the receipt reach the saga.
    return {
        "Package-Id": content.package_id,
        "DFDG-Citizen-Key": content.citizen_key,
        "Source-Organization": "Det Faelles Datagrundlag (DFDG)",
        "External-Description": "Integration cases (integration act chapters 4 and 4a) of a deceased citizen",
        "Period-Start": start.isoformat(),
        "Period-End": end.isoformat(),
        "Case-Count": str(len(content.cases)),
        "Case-Types": ", ".join(content.case_types),
        "Programmes": ", ".join(content.programmes),
    }


def _write_payload(root: Path, content: PackageContent, schemas_dir: Path) -> None:
    records = archived_case_records(content)
    with (root / "cases.jsonl").open("w", encoding="utf-8") as out:
        for rec in records:
            line = {f.name: _json_value(getattr(rec, f.name)) for f in dataclasses.fields(rec)}
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=False) + "\n")
    schema = json.loads((schemas_dir / "ArchivedCase.avsc").read_text(encoding="utf-8"))
    convert = to_avro(ArchivedCase)
    with (root / "cases.avro").open("wb") as out:
        writer(out, parse_schema(schema), [convert(rec) for rec in records])
    (root / "schemas").mkdir()
    for avsc in sorted(schemas_dir.glob("*.avsc")):
        shutil.copyfile(avsc, root / "schemas" / avsc.name)


def _valid(path: Path) -> bool:
    try:
        return bool(bagit.Bag(str(path)).is_valid())
    except bagit.BagError:
        return False


def _received_copies(inbox: Path, package_id: str) -> list[Path]:
    """The copies of ``package_id`` under ``received/``, newest first: the receiver keeps a second
    delivery of an id beside the first as ``<package_id>.1``, a third as ``.2`` (``_free_target``)."""
    folder = inbox / RECEIVED_DIR
    if not folder.is_dir():
        return []
    numbered: list[tuple[int, Path]] = []
    for path in folder.iterdir():
        suffix = path.name[len(package_id):] if path.name.startswith(package_id) else None
        if suffix == "":
            numbered.append((0, path))
        elif suffix and suffix[0] == "." and suffix[1:].isdigit():
            numbered.append((int(suffix[1:]), path))
    return [path for _, path in sorted(numbered, reverse=True)]


def _copies(inbox: Path, package_id: str, received: bool, refused_sha256: Collection[str]) -> list[Path]:
    """Where a delivered copy may be, in the order to reuse it: the inbox (not yet received, so the
    archive will still receipt it), then the received copies newest first, except a refused one's."""
    places = [inbox / package_id]
    if received:
        places += [p for p in _received_copies(inbox, package_id)
                   if not (refused_sha256 and (p / "tagmanifest-sha256.txt").is_file()
                           and tagmanifest_sha256(p) in refused_sha256)]
    return places


def _existing(inbox: Path, package_id: str, received: bool = True,
              refused_sha256: Collection[str] = ()) -> Delivery | None:
    for path in _copies(inbox, package_id, received, refused_sha256):
        if path.exists():
            if not _valid(path):
                raise PackageConflictError(f"package {package_id} exists at {path.parent.name}/ but does not validate")
            oxum = bagit.Bag(str(path)).info.get("Payload-Oxum", "")
            return Delivery(package_id, path, written=False, payload_oxum=str(oxum),
                            tagmanifest_sha256=tagmanifest_sha256(path))
    return None


def tagmanifest_sha256(bag: Path) -> str:
    """The SHA-256 of a bag's ``tagmanifest-sha256.txt``, computed as the archive's receiver does."""
    return hashlib.sha256((bag / "tagmanifest-sha256.txt").read_bytes()).hexdigest()


def delivered_checksum(inbox: Path, package_id: str, refused_sha256: Collection[str] = ()) -> str | None:
    """The tag-manifest checksum of the package delivered under ``package_id`` (in the inbox, else
    the newest copy under ``received/`` whose checksum is not one of ``refused_sha256``), or None when none
    is there. For a saga whose "delivered" step a crash kept from being written: the receipt is
    still checked against what was delivered, not against an older copy the archive received."""
    for path in _copies(inbox, package_id, True, refused_sha256):
        if (path / "tagmanifest-sha256.txt").is_file():
            return tagmanifest_sha256(path)
    return None


def deliver(inbox: Path, content: PackageContent, *, schemas_dir: Path = SCHEMA_DIR,
            reuse_received: bool = True, refused_sha256: Collection[str] = ()) -> Delivery:
    """Write ``content`` as a bag ``<inbox>/<package_id>/`` (sha256 and sha512 manifests), atomically.

    A no-op if the archive already holds a valid package with this id. ``reuse_received=False``
    counts only a bag still waiting in the inbox: after a refused receipt (R7.2) the received copy
    is what the receipt was about, and the archive's receiver sends no second receipt for it.
    ``refused_sha256`` skips only the received copies with one of those checksums: any other one (a bag an
    earlier redelivery wrote, perhaps received as ``<package_id>.N``) is reused, not written again.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    found = _existing(inbox, content.package_id, reuse_received, refused_sha256)
    if found is not None:
        return found
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=inbox))
    try:
        _write_payload(tmp, content, schemas_dir)
        bag = bagit.make_bag(str(tmp), bag_info=_bag_info(content), checksums=list(CHECKSUMS))
        oxum = str(bag.info.get("Payload-Oxum", ""))
        # mkdtemp makes the directory private; the archive (another user) must be able to read it.
        os.chmod(tmp, 0o755)  # noqa: S103
        target = inbox / content.package_id
        try:
            tmp.rename(target)  # atomic within one file system: all of the package or none
        except OSError:
            # Another delivery of the same id won the race: fine if what it wrote is valid.
            found = _existing(inbox, content.package_id, reuse_received, refused_sha256)
            if found is None:
                raise
            return found
        return Delivery(content.package_id, target, written=True, payload_oxum=oxum,
                        tagmanifest_sha256=tagmanifest_sha256(target))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
