"""``dfdg subscribe <subscriber> [--from-beginning] [--follow] [--json]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from dfdg.jsonio import to_jsonable
from dfdg.subscriber import read_topic
from dfdg.subscriber_keys import SubscriberKeys
from processors.routing import topic_for_subscriber
from schemas.codec import Codec
from streams.keystore import KeysUnavailable, UnknownKey
from streams.settings import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("subscribe", help="print a subscriber's notifications (e.g. jobcenter:101)")
    p.add_argument("subscriber", help="subscriber id: akasse:<fund>, benefits:<kommune>, jobcenter:<kommune>, ...")
    p.add_argument("--from-beginning", action="store_true", help="from the oldest kept notification")
    p.add_argument("--follow", action="store_true", help="keep waiting for new notifications")
    p.add_argument("--json", action="store_true", help="one JSON document per line (default: readable lines)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    codec = Codec.default()
    topic = topic_for_subscriber(args.subscriber)
    keys = await _keys(args)
    try:
        await _print_all(args, codec, topic, keys)
    finally:
        if keys is not None:
            await keys.stop()
    return 0


async def _keys(args: argparse.Namespace) -> SubscriberKeys | None:
    """This subscriber's notification keys, when its key-encryption key is at hand."""
    try:
        keys = SubscriberKeys(args.bootstrap, args.subscriber)
    except ConfigError:
        return None
    await keys.start()
    return keys


async def _opened(keys: SubscriberKeys | None, notification: object) -> object:
    if keys is None:
        return "<sealed: no key-encryption key for this subscriber>"
    try:
        return await keys.personal(notification, wait_s=10.0)  # type: ignore[arg-type]
    except UnknownKey:
        return "<shredded: the citizen has been deleted>"
    except KeysUnavailable:
        return "<not opened: the key topic could not be read in time; try again>"


async def _print_all(args: argparse.Namespace, codec: Codec, topic: str, keys: SubscriberKeys | None) -> None:
    async for _key, _headers, value in read_topic(args.bootstrap, topic, args.from_beginning, args.follow):
        notification = codec.decode(value)
        record = to_jsonable(notification)
        record["personal"] = await _opened(keys, notification) if record.get("personal") else None
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            details = " ".join(f"{k}={v}" for k, v in sorted(record["details"].items()))
            print(f"{record['created_at']} {record['kind']} citizen={record['citizen_key'][:12]} {details} "
                  f"id={record['notification_id']}", flush=True)
