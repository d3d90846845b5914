"""Avro single-object encoding of the pipeline's records.

Wire format (Avro spec, "Single object encoding"): ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary
body. A reader looks the fingerprint up in the catalogue and resolves that writer version to
the current version of the same record, so producers and consumers of different schema
versions mix. Everything that can be prepared is prepared once per codec: parsed schemas,
the fingerprint dict, per-class converters and headers, and per class a generated writer and a
reader of its current schema (``schemas.fast_writer``, ``schemas.fast_reader``: the same bytes
and records, in a third to two thirds of the time). fastavro writes and reads what those leave:
bodies of older schema versions, field types they do not cover.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from processors import reference as ref
from schemas import convert
from schemas.catalogue import SCHEMA_DIR, Catalogue, SchemaVersion, load_directory
from schemas.fast_reader import Reader, compile_reader
from schemas.fast_writer import LeftToFastavro, compile_writer
from schemas.registry import registered_classes

__all__ = ["CONTENT_TYPE", "MAGIC", "Codec", "CodecError"]

MAGIC = b"\xc3\x01"
CONTENT_TYPE = b"application/vnd.apache.avro+binary; encoding=single-object"
_HEADER_LEN = len(MAGIC) + 8


class CodecError(Exception):
    """The one error the codec raises. ``code`` is stable (``processors.reference.ERROR_CODES``);
    ``message`` says what is wrong and never contains field values (they may be personal data)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Writer:
    """What encoding one class needs, prepared once."""

    __slots__ = ("fast", "full_name", "headers", "parsed", "prefix", "to_avro")

    def __init__(self, version: SchemaVersion, cls: type) -> None:
        self.full_name = version.full_name
        self.prefix = MAGIC + version.fingerprint
        self.parsed = version.parsed
        self.to_avro = convert.to_avro(cls)
        self.headers = (("content-type", CONTENT_TYPE), ("avro-schema", version.full_name.encode()))
        # Prefix and body in one generated function, where every field's type allows (schemas.fast_writer).
        self.fast = compile_writer(version.schema, cls, self.prefix)


class Codec:
    """Encodes registered dataclasses and decodes any catalogued schema version into them."""

    _default: Codec | None = None

    def __init__(self, catalogue: Catalogue, classes: Mapping[str, type]) -> None:
        self._catalogue = catalogue
        self._writers: dict[type, _Writer] = {}
        self._readers: dict[str, Callable[[Mapping[str, Any]], object]] = {}
        self._names: dict[type, str] = {}
        # Current-version fingerprint -> a generated reader straight into the class (schemas.fast_reader).
        self._fast_readers: dict[bytes, tuple[str, Reader]] = {}
        for full_name, cls in classes.items():
            self._names[cls] = full_name
            version = catalogue.current.get(full_name)
            if version is None:
                continue  # a class without a schema yet: E105 when it is used, caught by tests
            _check_fields(version, cls)
            self._writers[cls] = _Writer(version, cls)
            self._readers[full_name] = convert.from_avro(cls)
            fast = compile_reader(version.schema, cls)
            if fast is not None:
                self._fast_readers[version.fingerprint] = (full_name, fast)
        # writer fingerprint -> (full name, writer schema, reader schema or None when identical)
        self._decoders: dict[bytes, tuple[str, Any, Any]] = {}
        for fp, version in catalogue.by_fingerprint.items():
            current = catalogue.current[version.full_name]
            reader = None if current.fingerprint == fp else current.parsed
            self._decoders[fp] = (version.full_name, version.parsed, reader)

    @classmethod
    def from_directory(cls, directory: Path | None = None, classes: Mapping[str, type] | None = None) -> Codec:
        """A codec over ``directory`` (default: this package) and ``classes`` (default: the registry)."""
        current, others = load_directory(directory or SCHEMA_DIR)
        return cls(Catalogue(current, others), registered_classes() if classes is None else classes)

    @classmethod
    def default(cls) -> Codec:
        """The codec over every ``.avsc`` in ``schemas/`` (and ``schemas/versions/``), built once."""
        if Codec._default is None:
            Codec._default = cls.from_directory()
        return Codec._default

    def encode(self, record: object) -> bytes:
        """Single-object encoding of a registered dataclass instance (raises ``CodecError`` E105/E106)."""
        writer = self._writer(type(record))
        try:
            if writer.fast is not None:
                try:
                    return writer.fast(record)
                except LeftToFastavro:
                    pass
            buf = io.BytesIO()
            buf.write(writer.prefix)
            schemaless_writer(buf, writer.parsed, writer.to_avro(record))
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            raise CodecError(ref.E106_UNENCODABLE_RECORD,
                             f"{writer.full_name}: a value does not fit the schema ({type(exc).__name__})") from None
        return buf.getvalue()

    def decode(self, data: bytes) -> object:
        """The dataclass instance ``data`` encodes (raises ``CodecError`` E101-E105)."""
        fast = self._fast_readers.get(data[2:_HEADER_LEN]) if data[:2] == MAGIC else None
        if fast is not None and type(data) is bytes:
            full_name, read = fast
            try:
                return read(data, _HEADER_LEN)
            except Exception as exc:  # noqa: BLE001 - whatever a malformed body raises, or the class refuses
                raise CodecError(ref.E103_MALFORMED_BODY, f"{full_name}: {type(exc).__name__} in the body") from None
        full_name, raw = self.decode_dict(data)
        build = self._readers.get(full_name)
        if build is None:
            raise CodecError(ref.E105_UNKNOWN_RECORD_TYPE, f"no class is registered for {full_name}")
        try:
            return build(raw)
        except (ValueError, TypeError) as exc:  # an out-of-range int, an enum symbol the class lacks
            raise CodecError(ref.E103_MALFORMED_BODY,
                             f"{full_name}: {type(exc).__name__} building the record") from None

    def decode_dict(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(full schema name, fastavro's dict in the current schema's shape), without building the dataclass."""
        if len(data) < _HEADER_LEN or data[:2] != MAGIC:
            raise CodecError(ref.E101_NOT_SINGLE_OBJECT, "no C3 01 marker and 8-byte fingerprint at the start")
        fp = bytes(data[2:_HEADER_LEN])
        entry = self._decoders.get(fp)
        if entry is None:
            raise CodecError(ref.E102_UNKNOWN_SCHEMA, f"fingerprint {fp.hex()} is not in the catalogue")
        full_name, writer, reader = entry
        buf = io.BytesIO(data)
        buf.seek(_HEADER_LEN)
        try:
            raw = schemaless_reader(buf, writer, reader)
        except SchemaResolutionError:
            raise CodecError(ref.E104_UNRESOLVABLE_SCHEMA, f"{full_name}: writer version cannot be read") from None
        except Exception as exc:  # noqa: BLE001 - any failure inside fastavro means the body is bad
            raise CodecError(ref.E103_MALFORMED_BODY, f"{full_name}: {type(exc).__name__} in the body") from None
        if buf.tell() != len(data):
            raise CodecError(ref.E103_MALFORMED_BODY, f"{full_name}: {len(data) - buf.tell()} bytes after the body")
        if not isinstance(raw, dict):
            raise CodecError(ref.E103_MALFORMED_BODY, f"{full_name}: the body is not a record")
        return full_name, raw

    def headers_for(self, record: object) -> list[tuple[str, bytes]]:
        """Kafka headers for ``record``: its content type and its full schema name."""
        return list(self._writer(type(record)).headers)

    def full_name(self, cls: type) -> str:
        """The Avro full name bound to ``cls`` (e.g. ``dk.dfdg.events.CaseCreated``)."""
        name = self._names.get(cls)
        if name is None:
            raise CodecError(ref.E105_UNKNOWN_RECORD_TYPE, f"{cls.__qualname__} is not a registered record")
        return name

    def schema_json(self, full_name: str) -> str:
        """The current (writer) schema of ``full_name`` as JSON, docs included."""
        version = self._catalogue.current.get(full_name)
        if version is None:
            raise CodecError(ref.E102_UNKNOWN_SCHEMA, f"no schema named {full_name}")
        return json.dumps(dict(version.schema), ensure_ascii=False, indent=2)

    @property
    def catalogue(self) -> Catalogue:
        """Every schema version this codec knows."""
        return self._catalogue

    def _writer(self, cls: type) -> _Writer:
        writer = self._writers.get(cls)
        if writer is None:
            raise CodecError(ref.E105_UNKNOWN_RECORD_TYPE, f"{cls.__qualname__} has no registered record schema")
        return writer


def _check_fields(version: SchemaVersion, cls: type) -> None:
    schema_fields = tuple(str(f["name"]) for f in version.schema["fields"])
    if schema_fields != convert.record_fields(cls):
        raise ValueError(f"{cls.__qualname__} and schema {version.full_name} disagree on fields")
