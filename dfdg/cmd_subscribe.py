"""``dfdg subscribe <subscriber> [--from-beginning] [--follow] [--json]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from dfdg.jsonio import to_jsonable
from dfdg.subscriber import read_topic
from processors.routing import topic_for_subscriber
from schemas.codec import Codec


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
    async for _key, _headers, value in read_topic(args.bootstrap, topic, args.from_beginning, args.follow):
        record = to_jsonable(codec.decode(value))
        if args.json:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            details = " ".join(f"{k}={v}" for k, v in sorted(record["details"].items()))
            print(f"{record['created_at']} {record['kind']} citizen={record['citizen_key'][:12]} {details} "
                  f"id={record['notification_id']}", flush=True)
    return 0
