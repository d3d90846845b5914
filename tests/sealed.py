"""Reading what the worker sealed, as an operator with the (development) master key can."""

from __future__ import annotations

from dfdg.dead_letter_view import Letter, Opened, Opener
from schemas.topics import citizen_keys_topic
from sinks.crypto import MasterKey
from streams.citizen_rows import decode_row
from streams.keystore import KeyStore
from streams.sealing import state_aad


def citizens_changelog(app_id: str) -> str:
    """The changelog of the worker's one table: one row per citizen (``streams.citizen_rows``)."""
    return f"{app_id}-citizens-changelog"


async def open_state(bootstrap: str, app_id: str, citizen: str, row: bytes) -> bytes:
    """The state JSON of a ``citizens`` changelog row, in clear (raises ``UnknownKey`` once
    shredded). The row's state must be sealed: an erasure marker, or a state written in
    clear, is an ``AssertionError`` here, never a silent pass."""
    from sinks.crypto import is_sealed, open_sealed, sealed_key_id

    header, sealed = decode_row(row)
    assert not header.erased, "the row is an erasure marker: it holds no state"
    assert is_sealed(sealed), "the row's state is not sealed"
    store = KeyStore(bootstrap, citizen_keys_topic(app_id), MasterKey(MasterKey.DEV_KEY))
    await store.start()
    try:
        key = await store.key_by_id(citizen, sealed_key_id(sealed), wait_s=2.0)
        return open_sealed(key, sealed, state_aad(citizen))
    finally:
        await store.stop()


async def open_dead_letter(bootstrap: str, letter: Letter) -> bytes:
    opener = Opener(bootstrap)
    try:
        return await opener.original(letter)
    finally:
        await opener.close()


async def open_original(bootstrap: str, letter: Letter) -> Opened:
    """The letter's value, key and headers as the publisher sent them."""
    opener = Opener(bootstrap)
    try:
        return await opener.opened(letter)
    finally:
        await opener.close()
