"""``dfdg dead-letters show`` against the real broker (issue 13, point 5): one letter opened with
the master key, decoded, the CPR masked unless ``--reveal-cpr``, the code's meaning and the next
step named; and once the letter's citizen has been deleted, the same command says it can no
longer be opened and that there is nothing to replay.

The command runs as an operator runs it, ``python -m dfdg.cli``, with the development master key."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dfdg.cmd_archive import kafka_publish, receive_and_publish
from dfdg.cmd_dead_letters import read_letters
from dfdg.dead_letter_view import Letter
from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from dfdg.subscriber import Subscriber
from processors.reference import ERROR_CODES
from schemas.codec import Codec
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.kafka


async def _letters_of(bootstrap: str, group: str, count: int, worker: WorkerProcess) -> list[Letter]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        letters = [x for x in await read_letters(bootstrap) if x.header("dlq.group") == group]
        if len(letters) >= count:
            return letters
        await asyncio.sleep(0.5)
    raise AssertionError(f"expected {count} dead letters for {group}:\n{worker.tail()}")


async def _show(worker: WorkerProcess, bootstrap: str, letter: Letter, *flags: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dfdg.cli", "dead-letters", "show", "--offset", str(letter.offset),
        "--bootstrap", bootstrap, *flags, env=worker.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode() + err.decode()
    return out.decode()


async def _show_json(worker: WorkerProcess, bootstrap: str, letter: Letter, *flags: str) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(await _show(worker, bootstrap, letter, "--json", *flags))
    return view


def _case_id(unique: str) -> str:
    """A case id from the test's unique suffix, never with ten digits in a row: the view masks
    any such run as a CPR, and ten hex digits are all decimal about once in a hundred runs."""
    return f"c-{unique[:5]}x{unique[5:]}"


def _masked(cpr: str) -> str:
    return f"{cpr[:6]}-****"


async def test_dead_letters_show_opens_a_letter_masks_the_cpr_and_names_the_meaning_and_next_step(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    rng = random.Random(unique)
    late_cpr, bad_cpr = synthetic_cpr(rng), synthetic_cpr(rng)
    app_id = f"dfdg-show-{unique}"
    handover = (date.today() + timedelta(days=10)).isoformat()
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w").start()
    try:
        async with Publisher(bootstrap) as publisher:
            # E302 after the door: the handover arrives before its case (a missing fact).
            await publisher.publish(event_from_json("handover-date-passed", {
                "cpr": late_cpr, "case_id": _case_id(unique), "handover_date": handover,
                "receiving_municipality": "101"}))
            # E202 at the door: the message itself is wrong; keyed by CPR, as a careless publisher does.
            bad = event_from_json("case-created", {
                "cpr": bad_cpr, "case_id": f"bad-{unique}", "receiving_municipality": "999",
                "jobcenter_municipality": "101", "contact_group": 18, "handover_date": handover, "cv_number": "CV"})
            await publisher.publish_raw("dfdg.case-created", Codec.default().encode(bad), key=bad_cpr.encode(),
                                        headers=[("x-trace", f"t-{unique}".encode())])
        letters = await _letters_of(bootstrap, app_id, 2, worker)
    finally:
        worker.stop()
    by_code = {x.header("dlq.error.code").split(" ")[0]: x for x in letters}
    assert set(by_code) == {"E302", "E202"}, by_code.keys()

    late = await _show_json(worker, bootstrap, by_code["E302"])
    assert late["code"] == "E302 unknown-case" and late["meaning"] == ERROR_CODES["E302 unknown-case"]
    assert late["topic"] == "dfdg.handover-date-passed" and late["sealed_for"] == citizen_key(DEV_PSEUDONYM_KEY,
                                                                                              late_cpr)
    # Opened with the master key and decoded: the publisher's event, its CPR masked.
    assert late["value"]["case_id"] == _case_id(unique) and late["value"]["cpr"] == _masked(late_cpr)
    assert late["next"].startswith("fix the cause") and f"replay --offset {by_code['E302'].offset}" in late["next"]

    bad_view = await _show_json(worker, bootstrap, by_code["E202"])
    assert bad_view["meaning"] == ERROR_CODES[by_code["E202"].header("dlq.error.code")]
    assert bad_view["value"]["cpr"] == _masked(bad_cpr) and bad_view["key"] == _masked(bad_cpr)
    assert bad_view["headers"] == {"x-trace": f"t-{unique}"}  # the publisher's own headers, opened
    assert "corrected event" in bad_view["next"] and "dfdg.case-created[" in bad_view["next"]
    assert "receiving_municipality" in bad_view["message"] and "999" not in bad_view["message"]
    # The operator's plain view: every line there, no CPR in clear anywhere.
    text = await _show(worker, bootstrap, by_code["E202"])
    for label in ("code:", "meaning:", "value:", "next:"):
        assert label in text, text
    assert bad_cpr not in text and late_cpr not in await _show(worker, bootstrap, by_code["E302"])
    # Asked for, the CPR is shown in clear.
    revealed = await _show_json(worker, bootstrap, by_code["E202"], "--reveal-cpr")
    assert revealed["value"]["cpr"] == bad_cpr and revealed["key"] == bad_cpr


async def _until_the_jobcentre_has_the_case(bootstrap: str, unique: str, key: str) -> None:
    """The case's notification reached its jobcentre, so the worker knows the case. Its topic and
    the contract's have no order between them: published at once, the contract can be handled
    first and is then, rightly, an E302 unknown-case."""
    async with Subscriber("jobcenter:851", bootstrap, group_id=f"jobcenter.851.show-{unique}") as sub:
        for _ in range(60):
            if [n async for n in sub.notifications(idle_timeout_s=1.0) if n.citizen_key == key]:
                return
    raise AssertionError("the case's notification never reached jobcenter:851")


async def _drive_death_to_completion(bootstrap: str, cpr: str, app_id: str, inbox: Path,
                                     worker: WorkerProcess) -> None:
    """The archive-then-delete saga, as ``test_archive_saga`` drives it: the death is published,
    the archive receipts the delivered package, and the worker completes the deletion."""
    async with Publisher(bootstrap) as publisher:
        await publisher.publish(event_from_json("citizen-deceased", {
            "cpr": cpr, "date_of_death": date.today().isoformat()}))
        deadline = time.monotonic() + 60
        outcomes: list[object] = []
        while not outcomes:
            assert time.monotonic() < deadline, "no archive package was delivered:\n" + worker.tail()
            outcomes = list(await receive_and_publish(inbox, kafka_publish(publisher, app_id=app_id)))
            if not outcomes:
                await asyncio.sleep(0.5)
    worker.wait_for("archive saga completed", 60)


async def test_dead_letters_show_says_a_deleted_citizens_letter_can_no_longer_be_opened(
        bootstrap: str, unique: str, tmp_path: Path) -> None:
    cpr = synthetic_cpr(random.Random(unique))
    app_id, inbox = f"dfdg-show-gone-{unique}", tmp_path / "inbox"
    worker = WorkerProcess(bootstrap, app_id, tmp_path / "w", {"DFDG_ARCHIVE_INBOX": str(inbox)}).start()
    try:
        async with Publisher(bootstrap) as publisher:
            await publisher.publish(event_from_json("case-created", {
                "cpr": cpr, "case_id": _case_id(unique), "receiving_municipality": "851",
                "jobcenter_municipality": "851", "contact_group": 27,
                "handover_date": (date.today() + timedelta(days=30)).isoformat(), "cv_number": "CV"}))
            await _until_the_jobcentre_has_the_case(bootstrap, unique, citizen_key(DEV_PSEUDONYM_KEY, cpr))
            # E303, rejected after the door: the letter is sealed with the citizen's key.
            await publisher.publish(event_from_json("contract-concluded", {
                "cpr": cpr, "case_id": _case_id(unique), "concluded_date": date.today().isoformat()}))
        (letter,) = await _letters_of(bootstrap, app_id, 1, worker)
        assert letter.header("dlq.error.code").startswith("E303")
        before = await _show_json(worker, bootstrap, letter)
        # Readable while the citizen lives: otherwise the "cannot be opened" below proves nothing.
        assert before["value"]["case_id"] == _case_id(unique) and before["value"]["cpr"] == _masked(cpr)
        assert "replay --offset" in before["next"]

        await _drive_death_to_completion(bootstrap, cpr, app_id, inbox, worker)
    finally:
        worker.stop()
    after = await _show_json(worker, bootstrap, letter, "--reveal-cpr")
    assert set(after["value"]) == {"shredded"} and "can no longer be opened" in after["value"]["shredded"]
    assert after["next"].startswith("nothing to replay") and "replay --offset" not in after["next"]
    assert after["meaning"] == ERROR_CODES[letter.header("dlq.error.code")]
    text = await _show(worker, bootstrap, letter, "--reveal-cpr")
    assert "can no longer be opened" in text and cpr not in text and _case_id(unique) not in text
