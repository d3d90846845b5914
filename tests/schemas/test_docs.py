"""docs/events.md is generated from the contract and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from processors.reference import ERROR_CODES
from schemas.codec import Codec
from schemas.docs import render_events_markdown

EVENTS_MD = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_docs_events_md_is_up_to_date() -> None:
    assert EVENTS_MD.read_text(encoding="utf-8") == render_events_markdown(), (
        "docs/events.md differs from what schemas/docs.py generates: regenerate it with `make docs` "
        "(or `.venv/bin/python -m schemas.docs > docs/events.md`)")


def test_docs_list_every_record_field_and_error_code() -> None:
    text = render_events_markdown()
    for full_name, version in Codec.default().catalogue.current.items():
        assert f"### `{full_name}`" in text
        for f in version.schema["fields"]:
            assert f"| `{f['name']}` |" in text
    for code in ERROR_CODES:
        assert f"| `{code}` |" in text
    for header in ("content-type", "avro-schema", "dlq.error.code", "dlq.timestamp", "dlq.error.class"):
        assert f"`{header}`" in text
