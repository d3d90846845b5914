"""``dfdg publish <type> --json '{...}'`` and ``dfdg publish --file events.jsonl``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter

from dfdg.jsonio import EventJsonError, event_from_json
from dfdg.progress import Progress
from dfdg.publisher import Publisher, PublishRejected


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("publish", help="publish events (validated first, like the pipeline's door)")
    p.add_argument("type", nargs="?", help="event type, e.g. case-created (with --json)")
    p.add_argument("--json", dest="json_text", help="one event's fields as JSON")
    p.add_argument("--file", help="JSON lines, one event per line with its \"type\"")
    p.add_argument("--producer", default="dfdg-cli", help="producer (system id) for events that carry none")
    p.add_argument("--no-validate", action="store_true", help="send as is (to test the pipeline's door)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            lines = [line for line in handle if line.strip()]
    elif args.type and args.json_text:
        lines = [json.dumps({"type": args.type, **json.loads(args.json_text)})]
    else:
        print("dfdg publish: give TYPE --json '{...}' or --file events.jsonl", file=sys.stderr)
        return 2
    return asyncio.run(_publish(args, lines))


async def _publish(args: argparse.Namespace, lines: list[str]) -> int:
    accepted = 0
    reasons: Counter[str] = Counter()
    progress = Progress(len(lines), "publishing", enabled=len(lines) > 1)
    async with Publisher(args.bootstrap) as publisher:
        for number, line in enumerate(lines, start=1):
            try:
                obj = json.loads(line)
                event = event_from_json(str(obj.pop("type", "")), obj, producer=args.producer)
                await publisher.publish(event, validate_first=not args.no_validate, wait=False)
                accepted += 1
            except (json.JSONDecodeError, EventJsonError, PublishRejected, ValueError) as exc:
                reason = str(exc).split(";")[0]
                reasons[reason] += 1
                print(f"line {number}: rejected: {exc}", file=sys.stderr)
            progress.advance()
        await publisher.flush()
    progress.close()
    rejected = sum(reasons.values())
    print(f"{accepted} accepted, {rejected} rejected")
    for reason, count in reasons.most_common():
        print(f"  {count} x {reason}")
    return 1 if rejected else 0
