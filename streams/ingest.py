"""The door: decode, validate and pseudonymise one incoming message, without I/O.

An admitted event continues to the citizen's partition under its pseudonymous key, with its
original bytes (no re-encoding on the hot path). Anything else becomes a refusal carrying a
stable error code and a message a person can act on, for the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from processors.clock import local_date
from processors.events import DeadlineDue, Event
from processors.frozen import quick_init
from processors.reference import E108_WRONG_TOPIC
from processors.validation import validate
from schemas.codec import Codec, CodecError
from schemas.topics import TOPIC_EVENT_TYPES, topic_carries
from streams.pseudonym import citizen_key

__all__ = ["Admitted", "Refused", "admit"]


@quick_init
@dataclass(frozen=True, slots=True)
class Admitted:
    citizen_key: str
    event: Event


@quick_init
@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    message: str
    exception_class: str
    # Set when the event could be read far enough to name a citizen: its dead letter is then
    # sealed with that citizen's key and goes when the citizen is deleted.
    citizen_key: str | None = None


def admit(value: bytes | None, codec: Codec, secret: bytes, now: datetime, topic: str) -> Admitted | Refused:
    """``topic`` is the ingress topic the message was read from: a record of another type is refused."""
    if not value:
        return Refused("E101 not-single-object", "the message has no value; publish one Avro single-object "
                       "encoded event per message", "EmptyValue")
    try:
        event = codec.decode(value)
    except CodecError as exc:
        return Refused(exc.code, exc.message, type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a codec bug must not stop the worker either
        return Refused("E199 decode-failed", f"the event could not be decoded ({type(exc).__name__}); "
                       "report this message's offset to the dfdg-stream team", type(exc).__name__)
    if not isinstance(event, Event) or isinstance(event, DeadlineDue):
        return Refused("E107 not-an-ingress-event", f"a {type(event).__name__} record is not an event publishers "
                       "may send; see docs/events.md for the ingress event types", "WrongRecordType")
    cpr = getattr(event, "cpr", None)
    owner = citizen_key(secret, cpr) if isinstance(cpr, str) and cpr else None
    if not topic_carries(topic, event):
        # Checked before anything else about the event: the ACLs grant a publisher its topics,
        # and a record of another type on them must not act (a forged death, say).
        carried = TOPIC_EVENT_TYPES.get(topic)
        wanted = carried.__name__ if carried else "no event type (it is not an ingress topic)"
        return Refused(E108_WRONG_TOPIC, f"record type: a {type(event).__name__} record was published on a topic "
                       f"that carries {wanted}; nothing was done. Publish it on its own topic (docs/events.md)",
                       "WrongTopic", owner)
    violations = validate(event, local_date(now))
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        return Refused(first.code, f"{first.field}: {first.message}{more}", "ValidationError", owner)
    if owner is None:
        return Refused("E201 invalid-cpr", "cpr: the event carries no CPR number", "ValidationError")
    return Admitted(owner, event)
