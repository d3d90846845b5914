"""``dfdg broker start | stop | status | reset [--nodes N]``: the local KRaft broker, or a
local cluster of N nodes (``dfdg.localbroker.cluster``)."""

from __future__ import annotations

import argparse

from dfdg.localbroker import broker_from_env
from dfdg.localbroker.cluster import cluster_from_env


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("broker", help="start, stop or inspect the local Kafka broker (no Docker needed)")
    p.add_argument("action", choices=["start", "stop", "status", "reset"])
    p.add_argument("--nodes", type=int, default=None,
                   help="a local cluster of this many nodes (3: replication factor 3, min.insync.replicas 2); "
                        "default DFDG_BROKER_NODES, else what was started at DFDG_BROKER_PORT, else 1")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    broker = cluster_from_env(args.nodes) or broker_from_env()
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
