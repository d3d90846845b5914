"""``dfdg dead-letters list | replay``: what the door refused, and sending it again after a fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from dataclasses import dataclass

from dfdg.subscriber import read_topic
from schemas.topics import DEAD_LETTER, citizen_keys_topic
from sinks.crypto import MasterKey, is_sealed, open_sealed, sealed_key_id
from sinks.dead_letter import original_headers
from streams.keystore import KeyStore, UnknownKey
from streams.sealing import event_aad
from streams.settings import dev_mode


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dead-letters", help="list or replay dead letters")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--code", help="only this error code (e.g. E201)")
    p.add_argument("--offset", type=int, action="append", default=[], help="only this dead-letter offset (repeat)")
    p.add_argument("--all", action="store_true", help="replay: every dead letter that matches")
    p.add_argument("--json", action="store_true")
    p.add_argument("--show-values", action="store_true",
                   help="list: also decode the original values (they may hold personal data)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Letter:
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")


async def read_letters(bootstrap: str) -> list[Letter]:
    letters: list[Letter] = []
    offset = 0
    async for key, headers, value in read_topic(bootstrap, DEAD_LETTER):
        letters.append(Letter(offset, key if isinstance(key, bytes) else None, value or b"", headers))
        offset += 1
    return letters


def _selected(args: argparse.Namespace, letters: list[Letter]) -> list[Letter]:
    chosen = letters
    if args.code:
        chosen = [x for x in chosen if x.header("dlq.error.code").startswith(args.code)]
    if args.offset:
        chosen = [x for x in chosen if x.offset in set(args.offset)]
    return chosen


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


class Opener:
    """Opens sealed dead-letter values with the data keys of the app that wrote them (operators
    hold the master key). A letter whose key was shredded cannot be opened or replayed."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._stores: dict[str, KeyStore] = {}

    async def original(self, letter: Letter) -> bytes:
        if not is_sealed(letter.value):
            return letter.value
        app_id = letter.header("dlq.group") or "dfdg"
        if app_id not in self._stores:
            store = KeyStore(self._bootstrap, citizen_keys_topic(app_id), MasterKey.from_env(dev_mode()))
            await store.start()
            self._stores[app_id] = store
        owner = letter.header("dlq.sealed-for")
        key = await self._stores[app_id].key_by_id(owner, sealed_key_id(letter.value), wait_s=1.0)
        return open_sealed(key, letter.value, event_aad(owner))

    async def close(self) -> None:
        for store in self._stores.values():
            await store.stop()


async def _run(args: argparse.Namespace) -> int:
    letters = _selected(args, await read_letters(args.bootstrap))
    opener = Opener(args.bootstrap)
    try:
        return await _act(args, letters, opener)
    finally:
        await opener.close()


async def _act(args: argparse.Namespace, letters: list[Letter], opener: Opener) -> int:
    if args.action == "list":
        for x in letters:
            row = {"offset": x.offset, "topic": x.header("dlq.topic"), "partition": x.header("dlq.partition"),
                   "source_offset": x.header("dlq.offset"), "code": x.header("dlq.error.code"),
                   "message": x.header("dlq.error.message"), "class": x.header("dlq.error.class")}
            if args.show_values:
                row["value"] = await _decoded(opener, x)
            print(json.dumps(row, ensure_ascii=False) if args.json else
                  f"{x.offset:>6} {row['code']:<32} {row['topic']}[{row['partition']}]@{row['source_offset']} "
                  f"{row['message']}")
        if not args.json:
            print(f"{len(letters)} dead letter(s)")
        return 0
    if not (args.all or args.offset or args.code):
        print("dfdg dead-letters replay: choose with --offset N, --code CODE or --all")
        return 2
    from dfdg.publisher import Publisher

    replayed = 0
    async with Publisher(args.bootstrap) as publisher:
        for x in letters:
            try:
                value = await opener.original(x)
            except UnknownKey:
                print(f"dead letter {x.offset}: its citizen has been deleted; nothing to replay")
                continue
            await publisher.publish_raw(x.header("dlq.topic"), value, x.key, original_headers(x.headers))
            replayed += 1
    print(f"replayed {replayed} dead letter(s) to their original topics")
    return 0


async def _decoded(opener: Opener, letter: Letter) -> object:
    from dfdg.jsonio import to_jsonable
    from schemas.codec import Codec, CodecError

    try:
        value = await opener.original(letter)
    except UnknownKey:
        return {"shredded": True}
    try:
        return to_jsonable(Codec.default().decode(value))
    except CodecError as exc:
        return {"undecodable": exc.code, "bytes": len(value)}
