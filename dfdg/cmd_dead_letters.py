"""``dfdg dead-letters list | show | replay``: what the worker refused, one letter opened for an
operator, and sending it again (to the publisher's own topic) after a fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from dfdg.dead_letter_view import Letter, Opener, answer_target, opened_view, replay_target
from dfdg.subscriber import read_topic
from processors.reference import ERROR_CODES
from schemas.topics import DEAD_LETTER
from sinks.crypto import CryptoError
from streams.keystore import KeysUnavailable, UnknownKey

__all__ = ["Letter", "Opener", "read_letters", "register"]

# Codes whose cause is in the message itself: replayed unchanged it is refused again, so the fix
# is a corrected event from the publisher. Anything else (E3xx: a missing fact; E9xx: a defect)
# is fixed elsewhere and the letter replayed as it is.
_FIXED_AT_SOURCE = ("E1", "E2")
# sysexits' "try again later": the key topic could not be read in time.
EX_TEMPFAIL = 75


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dead-letters", help="list, show or replay dead letters")
    p.add_argument("action", choices=["list", "show", "replay"])
    p.add_argument("--code", help="only this error code (e.g. E201)")
    p.add_argument("--offset", type=int, action="append", default=[], help="only this dead-letter offset (repeat)")
    p.add_argument("--all", action="store_true", help="replay: every dead letter that matches")
    p.add_argument("--json", action="store_true")
    p.add_argument("--show-values", action="store_true",
                   help="list: also open and decode the original values (CPR masked)")
    p.add_argument("--reveal-cpr", action="store_true",
                   help="show, list --show-values: print CPR numbers in clear (personal data)")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    p.set_defaults(func=run)


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


async def _run(args: argparse.Namespace) -> int:
    letters = _selected(args, await read_letters(args.bootstrap))
    opener = Opener(args.bootstrap)
    try:
        if args.action == "list":
            return await _list(args, letters, opener)
        if args.action == "show":
            return await _show(args, letters, opener)
        return await _replay(args, letters, opener)
    finally:
        await opener.close()


def _row(x: Letter) -> dict[str, object]:
    return {"offset": x.offset, "topic": x.header("dlq.topic"), "partition": x.header("dlq.partition"),
            "source_offset": x.header("dlq.offset"), "code": x.header("dlq.error.code"),
            "message": x.header("dlq.error.message"), "class": x.header("dlq.error.class")}


async def _list(args: argparse.Namespace, letters: list[Letter], opener: Opener) -> int:
    for x in letters:
        row = _row(x)
        if args.show_values:
            row["value"] = (await opened_view(opener, x, args.reveal_cpr))["value"]
        print(json.dumps(row, ensure_ascii=False) if args.json else
              f"{x.offset:>6} {row['code']!s:<32} {row['topic']}[{row['partition']}]@{row['source_offset']} "
              f"{row['message']}")
    if not args.json:
        print(f"{len(letters)} dead letter(s)")
    return 0


async def _show(args: argparse.Namespace, letters: list[Letter], opener: Opener) -> int:
    if len(args.offset) != 1 or not letters:
        print("dfdg dead-letters show: name one existing letter with --offset N (see dfdg dead-letters list)")
        return 2
    (x,) = letters
    opened = await opened_view(opener, x, args.reveal_cpr)
    view = {**_row(x), "timestamp": x.header("dlq.timestamp"), "group": x.header("dlq.group"),
            "sealed_for": x.header("dlq.sealed-for"),
            "meaning": ERROR_CODES.get(x.header("dlq.error.code"), ""),
            **opened, "next": _next_step(x, args.bootstrap, shredded="shredded" in opened["value"])}
    if args.json:
        print(json.dumps(view, ensure_ascii=False))
        return 0
    for name, value in view.items():
        text = json.dumps(value, ensure_ascii=False, indent=2) if isinstance(value, dict | list) else value
        print(f"{name + ':':<14}{text}")
    return 0


def _next_step(x: Letter, bootstrap: str, shredded: bool = False) -> str:
    code, topic = x.header("dlq.error.code"), x.header("dlq.topic")
    replay = f"dfdg dead-letters replay --offset {x.offset} --bootstrap {bootstrap}"
    if x.header("dlq.value-dropped") == "true":
        return "nothing to replay: the citizen was deleted and the value was not kept"
    if shredded:
        # R7: the citizen was deleted after the letter was written; its key went with them, so
        # neither this view nor a replay can open it. Advising a replay would only fail.
        return ("nothing to replay: the citizen has been deleted and the key that sealed this letter destroyed, "
                "so it can no longer be opened (its sealed bytes stay on the topic, unreadable)")
    if answer_target(x) is not None:
        if code.startswith("E308"):
            return ("a refused archive receipt: replayed it would be refused again; check the package, then "
                    "dfdg archive retry <package> (docs/operations.md)")
        return (f"an archive answer ({topic}): once its saga exists (E309) or the defect is fixed (E9xx), {replay} "
                "(opened and sent back as the archive published it)")
    if replay_target(x) is None:
        return (f"an internal record ({topic}), not a publisher's message: after the fix is deployed, {replay} "
                "(sent back as it was stored, never opened)")
    if code.startswith(_FIXED_AT_SOURCE) or code.startswith("E108"):
        return (f"the message itself is wrong: have its publisher send a corrected event on its own topic "
                f"(this one came on {topic}[{x.header('dlq.partition')}]@{x.header('dlq.offset')}); "
                f"replayed unchanged it would be refused again ({replay})")
    return f"fix the cause (a missing fact, or a defect for E9xx), then: {replay}"


async def _replay(args: argparse.Namespace, letters: list[Letter], opener: Opener) -> int:
    if not (args.all or args.offset or args.code):
        print("dfdg dead-letters replay: choose with --offset N, --code CODE or --all")
        return 2
    from dfdg.publisher import Publisher

    replayed = 0
    async with Publisher(args.bootstrap) as publisher:
        for position, x in enumerate(letters):
            if x.header("dlq.value-dropped") == "true":
                print(f"dead letter {x.offset}: its citizen has been deleted and its value was not kept; "
                      "nothing to replay")
                continue
            target = replay_target(x) or answer_target(x)
            if target is None:
                # Not a publisher's message: sent back exactly as stored (sealed, or not personal).
                await publisher.publish_raw(x.header("dlq.topic"), x.value, x.key, [])
                replayed += 1
                continue
            try:
                opened = await opener.opened(x)
            except (UnknownKey, CryptoError):
                print(f"dead letter {x.offset}: its citizen has been deleted; nothing to replay")
                continue
            except KeysUnavailable:
                # No answer about the citizen: stop here rather than skip it, so running the same
                # command again replays it and the rest. The letters replayed before it go out
                # again then, each with its event id, which the citizen step drops as seen.
                print(f"dead letter {x.offset}: not replayed, the key topic could not be read in time; "
                      f"it and the {len(letters) - position - 1} after it were left; run the same "
                      "command again")
                print(f"replayed {replayed} dead letter(s) to their original topics")
                return EX_TEMPFAIL
            # Back to the publisher's own topic, as the publisher sent it: the door admits it
            # again, seals it and passes it on; nothing in clear reaches an internal topic. An
            # archive answer goes back to the receipts topic as the archive published it.
            await publisher.publish_raw(target, opened.value, opened.key, opened.headers)
            replayed += 1
    print(f"replayed {replayed} dead letter(s) to their original topics")
    return 0
