"""The subscriber registry, pure: who may receive notifications and how (Kafka topic, webhook).

A subscriber is ``active``, ``suspended`` or ``disabled``:

- ``suspended``: the agency has closed the recipient's access (seed 003 §13). Notifications
  for it are still routed and *written to its topic* ``dfdg.notify.<role>.<id>``; only its
  access is closed: the Kafka ACL / consumer helper refuses it and the webhook dispatcher does
  not run for it. On ``resume`` it reads on from its committed offset (or the dispatcher
  starts again) and gets everything it missed, in order: held, never dropped. This keeps the
  routing pure (no registry lookup in the core) and the topic the single durable queue; the
  topic's retention must therefore exceed the longest suspension (set it to unlimited, or
  compact-and-alert, on ``dfdg.notify.*``).
- ``disabled``: its webhook endpoint answered 410 Gone. Like suspended, nothing is dropped:
  failed deliveries sit in the webhook's replay store until an operator resumes it and replays.

Webhook secrets never sit in the registry: ``webhook_secret_ref`` names where the secret is
(``env:VAR`` or ``file:/path``). Every change returns a new ``Registry``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast

from processors.frozen import replace
from processors.routing import parse_subscriber_id, topic_for_subscriber

__all__ = [
    "STATES",
    "Registry",
    "RegistryError",
    "Subscriber",
    "SubscriberState",
    "validate_secret_ref",
]

SubscriberState = Literal["active", "suspended", "disabled"]
STATES: tuple[SubscriberState, ...] = ("active", "suspended", "disabled")
_SECRET_SCHEMES = ("env:", "file:")


class RegistryError(ValueError):
    """An invalid subscriber or registry change (unknown id, duplicate, bad URL or secret ref)."""


def validate_secret_ref(ref: str) -> str:
    """``env:VAR`` or ``file:/absolute/path``; the secret itself is never accepted here."""
    if ref.startswith("whsec_"):
        raise RegistryError("a webhook secret must not be stored in the registry; give env:VAR or file:/path")
    if not ref.startswith(_SECRET_SCHEMES) or len(ref.split(":", 1)[1]) == 0:
        raise RegistryError(f"secret ref {ref!r} must be env:VAR or file:/path")
    return ref


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient: its id, its topic, its state and (optionally) a webhook endpoint."""

    id: str
    topic: str
    state: SubscriberState = "active"
    webhook_url: str | None = None
    webhook_secret_ref: str | None = None

    def __post_init__(self) -> None:
        parse_subscriber_id(self.id)
        if self.topic != topic_for_subscriber(self.id):
            raise RegistryError(f"{self.id}: topic must be {topic_for_subscriber(self.id)}, not {self.topic}")
        if self.state not in STATES:
            raise RegistryError(f"{self.id}: state {self.state!r} is not one of {STATES}")
        if self.webhook_url is not None:
            if not self.webhook_url.startswith(("https://", "http://")):
                raise RegistryError(f"{self.id}: webhook URL must be http(s)")
            if self.webhook_secret_ref is None:
                raise RegistryError(f"{self.id}: a webhook needs a secret ref (env:VAR or file:/path)")
        if self.webhook_secret_ref is not None:
            validate_secret_ref(self.webhook_secret_ref)

    @classmethod
    def new(cls, sub_id: str, webhook_url: str | None = None, webhook_secret_ref: str | None = None) -> Subscriber:
        """An active subscriber with the topic derived from its id."""
        return cls(sub_id, topic_for_subscriber(sub_id), "active", webhook_url, webhook_secret_ref)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "state": self.state,
                "webhook_url": self.webhook_url, "webhook_secret_ref": self.webhook_secret_ref}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Subscriber:
        sub_id = str(raw["id"])
        return cls(
            id=sub_id,
            topic=str(raw.get("topic") or topic_for_subscriber(sub_id)),
            state=cast(SubscriberState, raw.get("state", "active")),
            webhook_url=raw.get("webhook_url"),
            webhook_secret_ref=raw.get("webhook_secret_ref"),
        )


@dataclass(frozen=True, slots=True)
class Registry(Mapping[str, Subscriber]):
    """Immutable mapping subscriber id -> ``Subscriber``; changes return a new registry."""

    _subs: Mapping[str, Subscriber] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, sub_id: str) -> Subscriber:
        return self._subs[sub_id]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._subs))

    def __len__(self) -> int:
        return len(self._subs)

    @classmethod
    def of(cls, subscribers: list[Subscriber] | tuple[Subscriber, ...]) -> Registry:
        subs: dict[str, Subscriber] = {}
        for sub in subscribers:
            if sub.id in subs:
                raise RegistryError(f"{sub.id} is listed twice")
            subs[sub.id] = sub
        return cls(MappingProxyType(subs))

    def _with(self, sub: Subscriber) -> Registry:
        return Registry(MappingProxyType({**self._subs, sub.id: sub}))

    def _get(self, sub_id: str) -> Subscriber:
        try:
            return self._subs[sub_id]
        except KeyError:
            raise RegistryError(f"no subscriber {sub_id!r}") from None

    def add(self, sub_id: str, webhook_url: str | None = None, webhook_secret_ref: str | None = None) -> Registry:
        """Register a new, active subscriber."""
        if sub_id in self._subs:
            raise RegistryError(f"{sub_id} is already registered")
        return self._with(Subscriber.new(sub_id, webhook_url, webhook_secret_ref))

    def suspend(self, sub_id: str) -> Registry:
        """Close the subscriber's access; its notifications are held, not dropped."""
        return self._with(replace(self._get(sub_id), state="suspended"))

    def resume(self, sub_id: str) -> Registry:
        """Reopen a suspended or disabled subscriber; it then receives everything it missed."""
        return self._with(replace(self._get(sub_id), state="active"))

    def disable(self, sub_id: str) -> Registry:
        """Mark the webhook endpoint gone (410); held until an operator resumes and replays."""
        return self._with(replace(self._get(sub_id), state="disabled"))

    def active(self) -> tuple[Subscriber, ...]:
        """Subscribers whose access is open, in id order."""
        return tuple(s for s in (self._subs[k] for k in self) if s.state == "active")

    def to_json(self) -> dict[str, Any]:
        return {"subscribers": [self._subs[k].to_json() for k in self]}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Registry:
        return cls.of([Subscriber.from_json(item) for item in raw.get("subscribers", [])])
