"""``dfdg broker start | stop | status | reset``: the local single-node KRaft broker."""

from __future__ import annotations

import argparse

from dfdg.localbroker import broker_from_env


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("broker", help="start, stop or inspect the local Kafka broker (no Docker needed)")
    p.add_argument("action", choices=["start", "stop", "status", "reset"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    broker = broker_from_env()
    if args.action == "start":
        print(broker.start())
        return 0
    if args.action == "stop":
        print(broker.stop())
        return 0
    if args.action == "reset":
        broker.reset()
        print("stopped and storage deleted")
        return 0
    up, text = broker.status()
    print(text)
    return 0 if up else 1
