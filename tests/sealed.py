"""Reading what the worker sealed, as an operator with the (development) master key can."""

from __future__ import annotations

from dfdg.cmd_dead_letters import Letter, Opener
from schemas.topics import citizen_keys_topic
from streams.crypto import MasterKey
from streams.keystore import KeyStore
from streams.sealing import state_aad


async def open_state(bootstrap: str, app_id: str, citizen: str, value: bytes) -> bytes:
    """A citizen-state changelog value in clear (raises ``UnknownKey`` once shredded)."""
    from streams.crypto import open_sealed, sealed_key_id

    store = KeyStore(bootstrap, citizen_keys_topic(app_id), MasterKey(MasterKey.DEV_KEY))
    await store.start()
    try:
        key = await store.key_by_id(citizen, sealed_key_id(value), wait_s=2.0)
        return open_sealed(key, value, state_aad(citizen))
    finally:
        await store.stop()


async def open_dead_letter(bootstrap: str, letter: Letter) -> bytes:
    opener = Opener(bootstrap)
    try:
        return await opener.original(letter)
    finally:
        await opener.close()
