"""Issue 3 against the real broker: bad input goes to dfdg.dead-letter with every header,
the worker goes on, the next valid event is processed, and no CPR leaks into keys or logs."""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from dfdg.cmd_dead_letters import read_letters
from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import Subscriber, read_topic
from schemas.codec import Codec
from schemas.topics import citizen_events_topic
from sinks.dead_letter import DLQ_HEADERS
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.sealed import open_dead_letter, open_original
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka


async def _letters_of(bootstrap: str, group: str, count: int) -> list:
    for _ in range(60):
        letters = [x for x in await read_letters(bootstrap) if x.header("dlq.group") == group]
        if len(letters) >= count:
            return letters
        await asyncio.sleep(0.5)
    raise AssertionError(f"expected {count} dead letters for {group}")


async def test_malformed_and_domain_invalid_events_land_in_the_dead_letter_topic(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    rng = random.Random(unique)
    good_cpr, bad_case_cpr = synthetic_cpr(rng), synthetic_cpr(rng)
    app_id = f"dfdg-dlq-{unique}"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w").start()
    handover = (date.today() + timedelta(days=20)).isoformat()
    malformed = b"\xc3\x01 this is not avro " + unique.encode()
    invalid = event_from_json("case-created", {
        "cpr": bad_case_cpr, "case_id": f"bad-{unique}", "receiving_municipality": "999",  # not a kommune
        "jobcenter_municipality": "101", "contact_group": 18, "handover_date": handover, "cv_number": "CV"})
    valid = event_from_json("case-created", {
        "cpr": good_cpr, "case_id": f"good-{unique}", "receiving_municipality": "461",
        "jobcenter_municipality": "461", "contact_group": 19, "handover_date": handover, "cv_number": "CV"})
    try:
        async with Publisher(bootstrap) as publisher:
            await publisher.publish_raw("dfdg.case-created", malformed, key=b"k-" + unique.encode(),
                                        headers=[("x-origin", b"test")])
            await publisher.publish(invalid, validate_first=False)  # the door must catch what the client did not
            await publisher.publish(valid)
        letters = await _letters_of(bootstrap, app_id, 2)
        by_code = {x.header("dlq.error.code").split(" ")[0]: x for x in letters}
        assert set(by_code) == {"E102", "E202"}, by_code.keys()  # C3 01 + a fingerprint nobody wrote
        bad_bytes = by_code["E102"]
        # The original value, key and headers, sealed at rest (docs/security.md) and given back
        # byte for byte; the letter's own key is a digest, never the publisher's key.
        assert malformed not in bad_bytes.value and bad_bytes.key is not None and bad_bytes.key.startswith(b"dlq-")
        assert ("x-origin", b"test") not in bad_bytes.headers
        assert await open_dead_letter(bootstrap, bad_bytes) == malformed
        opened = await open_original(bootstrap, bad_bytes)
        assert opened.key == b"k-" + unique.encode() and opened.headers == [("x-origin", b"test")]
        for letter in letters:
            for header in DLQ_HEADERS:
                assert letter.header(header), f"{header} missing on {letter.header('dlq.error.code')}"
            assert letter.header("dlq.topic") == "dfdg.case-created"
            assert "Traceback" not in letter.header("dlq.error.message")
            assert bad_case_cpr not in letter.header("dlq.error.message")
        # The worker went on: the valid event after the bad ones reached its jobcentre.
        key = citizen_key(DEV_PSEUDONYM_KEY, good_cpr)
        async with Subscriber("jobcenter:461", bootstrap, group_id=f"jobcenter.461.t-{unique}") as sub:
            got = []
            for _ in range(30):
                got += [n async for n in sub.notifications(idle_timeout_s=1.0) if n.citizen_key == key]
                if got:
                    break
        assert [n.kind for n in got] == ["case-created"]
        # No CPR in any key of the internal topic, nor in the worker's log.
        keys = [k async for k, _h, _v in read_topic(bootstrap, citizen_events_topic(app_id))]
        assert all(good_cpr.encode() not in (k or b"") and bad_case_cpr.encode() not in (k or b"") for k in keys)
        assert key.encode() in keys
    finally:
        worker.stop()
    log = "\n".join(worker.lines)
    assert good_cpr not in log and bad_case_cpr not in log
    assert "dead letter" in log


def test_dead_letter_codes_are_documented() -> None:
    from processors.reference import ERROR_CODES

    for code in ("E101", "E102", "E103", "E104", "E201", "E202", "E901"):
        assert any(k.startswith(code) for k in ERROR_CODES), code
    assert Codec.default()  # the catalogue loads


async def test_a_rejected_letter_replays_to_its_ingress_topic_and_leaves_no_clear_cpr_inside(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    cpr = synthetic_cpr(random.Random(unique))
    app_id = f"dfdg-replay-{unique}"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w").start()
    # In the future: the pipeline's own R3.1 deadline cannot fire, so only the replayed event acts.
    handover = date.today() + timedelta(days=10)
    case = {"cpr": cpr, "case_id": f"c-{unique}", "receiving_municipality": "101", "jobcenter_municipality": "101",
            "contact_group": 18, "handover_date": handover.isoformat(), "cv_number": "CV"}
    try:
        async with Publisher(bootstrap) as publisher:
            # Out of order: the handover arrives before its case exists (E302, a stateful rejection).
            await publisher.publish(event_from_json("handover-date-passed", {
                "cpr": cpr, "case_id": f"c-{unique}", "handover_date": handover.isoformat(),
                "receiving_municipality": "101"}))
        (letter,) = await _letters_of(bootstrap, app_id, 1)
        assert letter.header("dlq.error.code").startswith("E302")
        # Rejected after the door, yet named as the publisher sent it: its ingress topic and key.
        assert letter.header("dlq.topic") == "dfdg.handover-date-passed"
        assert letter.key == citizen_key(DEV_PSEUDONYM_KEY, cpr).encode()
        async with Publisher(bootstrap) as publisher:
            await publisher.publish(event_from_json("case-created", case))  # the missing fact arrives
        replay = subprocess.run([sys.executable, "-m", "dfdg.cli", "dead-letters", "replay", "--offset",
                                 str(letter.offset), "--bootstrap", bootstrap], env=worker.env, capture_output=True,
                                text=True, timeout=120)
        assert replay.returncode == 0 and "replayed 1" in replay.stdout, replay.stdout + replay.stderr
        key = citizen_key(DEV_PSEUDONYM_KEY, cpr)
        kinds: list[str] = []
        async with Subscriber("benefits:101", bootstrap, group_id=f"benefits.101.t-{unique}") as sub:
            for _ in range(30):
                kinds += [n.kind async for n in sub.notifications(idle_timeout_s=1.0) if n.citizen_key == key]
                if "handover-date-passed" in kinds:
                    break
        assert kinds.count("handover-date-passed") == 1, kinds
        # The replay went through the door again: nothing in clear reached the internal topic.
        internal = [(k or b"") + (v or b"") + b"".join(hv for _n, hv in h)
                    async for k, h, v in read_topic(bootstrap, citizen_events_topic(app_id))]
        assert len(internal) >= 3 and not [r for r in internal if cpr.encode() in r]
    finally:
        worker.stop()
