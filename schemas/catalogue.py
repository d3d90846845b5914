"""Every schema version the codec knows, by full name and by fingerprint.

A schema file holds one self-contained record schema. The files directly in ``schemas/``
are the *current* versions (what we write and what we read into); ``schemas/versions/``
keeps every other version a producer may still write (older ones, and newer ones deployed
ahead of the code). Each version is identified on the wire by the CRC-64-AVRO (Rabin)
fingerprint of its Parsing Canonical Form, as the Avro single-object encoding requires.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

__all__ = [
    "SCHEMA_DIR",
    "Catalogue",
    "SchemaVersion",
    "canonical_form",
    "fingerprint64",
    "load_directory",
    "load_version",
]

SCHEMA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One schema version: its JSON, fastavro's parsed form and its 8-byte wire fingerprint."""

    full_name: str
    schema: Mapping[str, Any]
    parsed: Any  # fastavro's parsed schema (a dict it owns)
    canonical: str
    fingerprint: bytes  # CRC-64-AVRO, little-endian, exactly as it follows C3 01 on the wire


def canonical_form(schema: Mapping[str, Any]) -> str:
    """Avro Parsing Canonical Form: full names, no doc/default/aliases/logicalType, fixed key order."""
    return str(to_parsing_canonical_form(dict(schema)))


def fingerprint64(version: SchemaVersion) -> int:
    """The fingerprint as Java's ``SchemaNormalization.parsingFingerprint64`` returns it (a signed long)."""
    return int.from_bytes(version.fingerprint, "little", signed=True)


def load_version(schema: Mapping[str, Any]) -> SchemaVersion:
    """Parse one record schema once: canonical form, fingerprint and fastavro's parsed form."""
    if schema.get("type") != "record":
        raise ValueError("a schema file must hold one record schema")
    namespace = schema.get("namespace", "")
    name = str(schema["name"])
    full_name = name if "." in name or not namespace else f"{namespace}.{name}"
    canonical = canonical_form(schema)
    # fastavro renders the 64-bit Rabin value as hex of its little-endian bytes, which is
    # exactly the byte order the single-object header uses.
    wire = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    # Each file is self-contained (it defines DataArea, AbsenceType inline), so each gets
    # its own named-type scope.
    parsed = parse_schema(dict(schema), named_schemas={})
    return SchemaVersion(full_name, MappingProxyType(dict(schema)), parsed, canonical, wire)


def load_directory(directory: Path) -> tuple[list[SchemaVersion], list[SchemaVersion]]:
    """(current versions from ``directory/*.avsc``, other versions from ``directory/versions/*.avsc``)."""
    current = [load_version(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(directory.glob("*.avsc"))]
    others = [load_version(json.loads(p.read_text(encoding="utf-8")))
              for p in sorted((directory / "versions").glob("*.avsc"))]
    return current, others


class Catalogue:
    """Current version per full name, and every version (current or not) per fingerprint."""

    def __init__(self, current: Iterable[SchemaVersion], others: Iterable[SchemaVersion] = ()) -> None:
        self.current: dict[str, SchemaVersion] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        for version in current:
            if version.full_name in self.current:
                raise ValueError(f"two current schemas are named {version.full_name}")
            self.current[version.full_name] = version
            self._add(version)
        for version in others:
            if version.full_name not in self.current:
                raise ValueError(f"schema version of {version.full_name} has no current version to read into")
            if version.fingerprint not in self.by_fingerprint:
                self._add(version)

    def _add(self, version: SchemaVersion) -> None:
        clash = self.by_fingerprint.get(version.fingerprint)
        if clash is not None and clash.canonical != version.canonical:
            raise ValueError(f"fingerprint collision between {clash.full_name} and {version.full_name}")
        self.by_fingerprint[version.fingerprint] = version
