"""``dfdg webhooks run [--bootstrap] [--once]`` and ``dfdg webhooks replay <subscriber>``.

``run`` delivers every active webhook subscriber's notifications (see ``dfdg.webhook_runner``)
until SIGTERM/SIGINT, or with ``--once`` until what is on the topics now is delivered or held.
``replay`` re-sends the held failed deliveries of one subscriber, per citizen in their original
order; it runs while the runner is not serving that subscriber (suspend it first, or it is
already disabled by a 410), then ``dfdg subscribers resume`` lets the runner go on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from dfdg.webhook_runner import StoreLocked, WebhookRunner, default_held_dir, lock_store
from sinks import registry_store
from sinks.webhook import WebhookDispatcher, WebhookEndpoint
from sinks.webhook_retry import RetryPolicy, resolve_secret
from sinks.webhook_store import FailedDeliveryStore

__all__ = ["cmd_replay", "cmd_run", "register"]


def cmd_run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    runner = WebhookRunner(args.bootstrap, held_dir=args.held_dir, once=args.once)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    await runner.run()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    return asyncio.run(_replay(args))


async def _replay(args: argparse.Namespace) -> int:
    sub = registry_store.load().get(args.subscriber)
    if sub is None or sub.webhook_url is None or sub.webhook_secret_ref is None:
        print(f"error: {args.subscriber} is not a registered webhook subscriber", file=sys.stderr)
        return 2
    from dfdg.subscriber_keys import SubscriberKeys

    # The subscriber's per-citizen keys open the sealed bodies; a deleted citizen's no longer do.
    keys = SubscriberKeys(args.bootstrap, sub.id)
    await keys.start()
    store = FailedDeliveryStore(args.held_dir or default_held_dir(), sub.id, keys=keys)
    try:
        lock = lock_store(store)
    except StoreLocked:
        print(f"error: the webhook runner is serving {sub.id}; suspend it first "
              f"(dfdg subscribers suspend {sub.id}) and replay again", file=sys.stderr)
        await keys.stop()
        return 3
    try:
        endpoint = WebhookEndpoint(sub.id, sub.webhook_url, resolve_secret(sub.webhook_secret_ref))
        # An operator waits for the answer: a few quick tries; what still fails stays held.
        dispatcher = WebhookDispatcher(endpoint, store, policy=RetryPolicy(base_delay=1.0, max_attempts=5))
        count = await dispatcher.replay()
        await dispatcher.close()
        unread = len(store.waiting())
    finally:
        lock.close()
        await keys.stop()
    left = len(FailedDeliveryStore(store.path.parent, sub.id))
    if dispatcher.shredded:
        print(f"{sub.id}: {dispatcher.shredded} held deliveries not sent: their citizens have been deleted "
              "and the held bodies can no longer be opened; they were removed")
    if unread:
        # Never taken for deleted: a key topic this principal cannot see proves nothing.
        print(f"{sub.id}: {unread} held deliveries kept and not sent: the subscriber's key topic could not be "
              f"read (it does not exist on this cluster, or this principal may not describe it); check "
              f"--bootstrap and the ACLs, then replay again", file=sys.stderr)
    print(f"{sub.id}: replayed {count}, delivered {count - left}, still held {left}")
    if sub.state != "active":
        print(f"{sub.id} is {sub.state}: `dfdg subscribers resume {sub.id}` to deliver new notifications")
    return 0 if left == 0 else 1


def register(subparsers: Any) -> None:
    """Add the ``webhooks`` command to the CLI's subparsers; each leaf sets ``args.func``."""
    p = subparsers.add_parser("webhooks", help="deliver notifications to webhook subscribers")
    sub = p.add_subparsers(dest="webhooks_cmd", required=True)
    run = sub.add_parser("run", help="deliver every active webhook subscriber's notifications")
    run.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    run.add_argument("--once", action="store_true", help="deliver what is on the topics now, then exit")
    run.set_defaults(func=cmd_run)
    replay = sub.add_parser("replay", help="re-send a subscriber's held failed deliveries")
    replay.add_argument("subscriber")
    replay.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    replay.set_defaults(func=cmd_replay)
    for leaf in (run, replay):
        leaf.add_argument("--held-dir", default=None,
                          help="replay store directory (default $DFDG_WEBHOOK_HELD_DIR or $DFDG_HOME/webhook-held)")
