"""Opening a dead letter, as an operator holding the master key: its original value, key and
headers (sealed for the citizen, or for the letter's own digest), decoded where they decode,
with every CPR masked unless asked. Used by ``dfdg dead-letters list | show | replay``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from schemas.topics import INGRESS_TOPICS, archive_receipts_topic, citizen_keys_topic
from sinks.crypto import CryptoError, MasterKey, is_sealed, open_sealed, sealed_key_id
from sinks.dead_letter import DLQ_ORIGINAL
from streams.keystore import KeyStore, KeysUnavailable, UnknownKey
from streams.origin import unpack_envelope
from streams.sealing import event_aad, origin_aad
from streams.settings import dev_mode

__all__ = ["Letter", "Opened", "Opener", "answer_target", "mask_cpr", "opened_view", "replay_target"]

ARCHIVE_RECEIPTS_SUFFIX = archive_receipts_topic("")  # "<app id>.archive-receipts"
_CPR = re.compile(r"(?<!\d)(\d{6})-?(\d{4})(?!\d)")


@dataclass(frozen=True)
class Letter:
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")

    def raw_header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True)
class Opened:
    """The message as its publisher sent it."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


class Opener:
    """Opens sealed dead letters with the data keys of the app that wrote them (operators hold
    the master key). A letter whose key was shredded cannot be opened or replayed (``UnknownKey``)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._stores: dict[str, KeyStore] = {}

    async def _open(self, letter: Letter, sealed: bytes, aad: bytes) -> bytes:
        app_id = letter.header("dlq.group") or "dfdg"
        if app_id not in self._stores:
            store = KeyStore(self._bootstrap, citizen_keys_topic(app_id), MasterKey.from_env(dev_mode()))
            await store.start()
            self._stores[app_id] = store
        owner = letter.header("dlq.sealed-for")
        key = await self._stores[app_id].key_by_id(owner, sealed_key_id(sealed))
        return open_sealed(key, sealed, aad)

    async def original(self, letter: Letter) -> bytes:
        if not is_sealed(letter.value):
            return letter.value
        return await self._open(letter, letter.value, event_aad(letter.header("dlq.sealed-for")))

    async def opened(self, letter: Letter) -> Opened:
        """Value, key and headers as the publisher sent them. A letter written before the key
        and headers were sealed (no ``dlq.original``) carries them in clear."""
        value = await self.original(letter)
        sealed = letter.raw_header(DLQ_ORIGINAL)
        if sealed is None:
            return Opened(value, letter.key, [(k, v) for k, v in letter.headers if not k.startswith("dlq.")])
        key, headers = unpack_envelope(await self._open(letter, sealed, origin_aad(letter.header("dlq.sealed-for"))))
        return Opened(value, key, headers)

    async def close(self) -> None:
        for store in self._stores.values():
            await store.stop()


def replay_target(letter: Letter) -> str | None:
    """The ingress topic a letter goes back to, or ``None``: a letter whose message was not a
    publisher's (a deadline, an archive answer) is never opened onto an internal topic."""
    topic = letter.header("dlq.topic")
    return topic if topic in INGRESS_TOPICS else None


def answer_target(letter: Letter) -> str | None:
    """The archive-receipts topic a sealed archive answer (a receipt, rejection or retry request,
    E308/E309/E901) goes back to, opened: the worker reads those as the archive published them, and
    they hold nothing personal. ``None`` for any other letter, and for one written before such letters
    were sealed (it is replayed as it is stored)."""
    topic = letter.header("dlq.topic")
    return topic if topic.endswith(ARCHIVE_RECEIPTS_SUFFIX) and is_sealed(letter.value) else None


def mask_cpr(text: str) -> str:
    """``0101901234`` -> ``010190-****``: the birth date stays readable, the person does not."""
    return _CPR.sub(lambda m: f"{m.group(1)}-****", text)


def _masked(obj: Any, reveal: bool) -> Any:
    if reveal:
        return obj
    if isinstance(obj, str):
        return mask_cpr(obj)
    if isinstance(obj, dict):
        return {k: _masked(v, reveal) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_masked(v, reveal) for v in obj]
    return obj


async def opened_view(opener: Opener, letter: Letter, reveal_cpr: bool = False) -> dict[str, Any]:
    """The letter's original value, key and headers, decoded where they decode, CPRs masked."""
    from dfdg.jsonio import to_jsonable
    from schemas.codec import Codec, CodecError

    if letter.header("dlq.value-dropped") == "true":
        return {"value": {"dropped": "the citizen was deleted; the value was never kept"}}
    try:
        opened = await opener.opened(letter)
    except (UnknownKey, CryptoError):
        return {"value": {"shredded": "the citizen has been deleted and the key that sealed this letter "
                                      "destroyed: it can no longer be opened, and nothing of it can be read"}}
    except KeysUnavailable:
        return {"value": {"not opened": "the key topic could not be read up to date in time; this says "
                                        "nothing about the citizen: try again"}}
    try:
        value: Any = to_jsonable(Codec.default().decode(opened.value))
    except CodecError as exc:
        value = {"undecodable": exc.code, "bytes": len(opened.value),
                 "text": opened.value[:200].decode("utf-8", errors="replace")}
    key = None if opened.key is None else opened.key.decode("utf-8", errors="replace")
    headers = {k: v.decode("utf-8", errors="replace") for k, v in opened.headers}
    return _masked({"key": key, "headers": headers, "value": value}, reveal_cpr)
