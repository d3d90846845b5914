"""Whatever bytes arrive, decode raises nothing but CodecError and validate raises nothing at all."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.events import Event
from processors.validation import validate
from schemas.codec import Codec, CodecError
from schemas.registry import registered_classes
from tests.schemas.strategies import damaged, records

CODEC = Codec.default()
TODAY = date(2024, 6, 1)
FINGERPRINTS = sorted(CODEC.catalogue.by_fingerprint)
ANY_RECORD = st.one_of(*[records(cls) for cls in registered_classes().values()])


def _survive(data: bytes) -> None:
    try:
        decoded = CODEC.decode(data)
    except CodecError as exc:
        assert exc.code.split()[0] in {"E101", "E102", "E103", "E104", "E105"}
        return
    if isinstance(decoded, Event):
        violations = validate(decoded, TODAY)
        assert all(v.code[:4].startswith("E2") for v in violations)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_codec_errors(data: bytes) -> None:
    _survive(data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FINGERPRINTS), st.binary(max_size=200))
def test_random_bodies_behind_a_known_fingerprint_only_raise_codec_errors(fp: bytes, body: bytes) -> None:
    _survive(b"\xc3\x01" + fp + body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_RECORD, st.data())
def test_mutated_valid_encodings_only_raise_codec_errors(record: object, data: st.DataObject) -> None:
    _survive(damaged(CODEC.encode(record), data))


@settings(max_examples=300, deadline=None)
@given(st.one_of(*[records(cls) for cls in registered_classes().values() if issubclass(cls, Event)]), st.dates())
def test_validate_never_raises_on_any_well_typed_event(event: Event, today: date) -> None:
    for violation in validate(event, today):
        assert violation.code[:4].startswith("E2") and violation.field and violation.message
