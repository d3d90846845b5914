"""Each topic carries only its own events, and nothing personal leaves the ingress topics in
clear (issue 13), against the secured broker with the ACLs of ``dfdg acl sync``.

Publishers key by CPR here (careless, but it happens): a gateway granted only AbsenceDeleted
puts a death on ``dfdg.absence-deleted``, the case system puts a death and a registration on
``dfdg.case-created``. None of them may act; each is dead-lettered with E108, and afterwards no
topic but the ingress topics holds the test CPR in clear in a key, a value or a header.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, INGRESS_TOPICS, citizen_keys_topic
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.security.conftest import APP_ID, SecureKafka
from tests.security.kafka_io import read, records, topics
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess

CPR = synthetic_cpr(random.Random("issue-13-topic-types"))
KEY = citizen_key(DEV_PSEUDONYM_KEY, CPR)
CASE = "case-issue13"


@dataclass
class Run:
    letters: list[Any]
    kinds: list[str]
    everything: dict[str, list[Any]]
    log: str


def _events() -> dict[str, bytes]:
    codec, handover = Codec.default(), date.today() + timedelta(days=30)
    death = {"cpr": CPR, "date_of_death": (date.today() - timedelta(days=1)).isoformat()}
    return {
        "case": codec.encode(event_from_json("case-created", {
            "cpr": CPR, "case_id": CASE, "receiving_municipality": "101", "jobcenter_municipality": "101",
            "contact_group": 18, "handover_date": handover.isoformat(), "cv_number": "CV-1"})),
        "death": codec.encode(event_from_json("citizen-deceased", death)),
        "death again": codec.encode(event_from_json("citizen-deceased", death)),
        "registration": codec.encode(event_from_json("jobseeker-registered", {
            "cpr": CPR, "name": "Test Person", "registration_date": date.today().isoformat(),
            "benefit_category": "DAGPENGE", "unemployment_degree": 1.0, "job_titles": [], "municipality": "101"})),
        "handover": codec.encode(event_from_json("handover-date-passed", {
            "cpr": CPR, "case_id": CASE, "handover_date": handover.isoformat(), "receiving_municipality": "101"})),
    }


async def _publish(sk: SecureKafka) -> None:
    events, key = _events(), CPR.encode()
    async with Publisher(sk.bootstrap, **sk.user("publisher-fagsystem")) as case_system:
        await case_system.publish_raw("dfdg.case-created", events["case"], key)
    async with Publisher(sk.bootstrap, **sk.user("publisher-absence-gateway")) as gateway:
        await gateway.publish_raw("dfdg.absence-deleted", events["death"], key)
    async with Publisher(sk.bootstrap, **sk.user("publisher-fagsystem")) as case_system:
        await case_system.publish_raw("dfdg.case-created", events["death again"], key)
        await case_system.publish_raw("dfdg.case-created", events["registration"], key)
        # A valid event after the forged ones: it acts only if the citizen is alive.
        await case_system.publish_raw("dfdg.handover-date-passed", events["handover"], key)


def _letters(sk: SecureKafka) -> list[Any]:
    letters = asyncio.run(records(sk.bootstrap, sk.broker.admin_config(), DEAD_LETTER))
    return [r for r in letters if r.key == KEY.encode()]


@pytest.fixture(scope="module")
def run(secure_kafka: SecureKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    sk = secure_kafka
    sk.sync()
    env = {**sk.env_for("dfdg-worker"), "DFDG_SUBSCRIBERS_FILE": str(sk.subscribers_file)}
    worker = WorkerProcess(sk.bootstrap, APP_ID, Path(tmp_path_factory.mktemp("worker")), extra_env=env).start()
    kinds: list[str] = []
    try:
        asyncio.run(_publish(sk))
        codec = Codec.default()
        for _ in range(30):
            values = asyncio.run(read(sk.bootstrap, sk.user("jobcenter-101"), "dfdg.notify.jobcenter.101",
                                      "jobcenter.101.issue13", timeout_s=3))
            kinds += [n.kind for n in map(codec.decode, values) if getattr(n, "citizen_key", None) == KEY]
            if "handover-date-passed" in kinds and len(_letters(sk)) >= 3:
                break
        admin = sk.broker.admin_config()
        everything = {t: asyncio.run(records(sk.bootstrap, admin, t)) for t in asyncio.run(topics(sk.bootstrap, admin))}
        yield Run(_letters(sk), kinds, everything, "\n".join(worker.lines))
    finally:
        worker.stop()


def test_records_on_a_topic_that_does_not_carry_their_type_are_dead_lettered_with_e108(run: Run) -> None:
    assert sorted((_h(r, "dlq.error.code"), _h(r, "dlq.topic")) for r in run.letters) == [
        ("E108 wrong-topic", "dfdg.absence-deleted"),
        ("E108 wrong-topic", "dfdg.case-created"),
        ("E108 wrong-topic", "dfdg.case-created"),
    ]
    assert all("CitizenDeceased" in _h(r, "dlq.error.message") or "JobseekerRegistered" in _h(r, "dlq.error.message")
               for r in run.letters)


def test_a_forged_death_changes_nothing_the_citizen_lives_on(run: Run) -> None:
    # No death notice, no deletion: the valid handover after the forged deaths still acts (R7.3
    # would have refused it), and the citizen's data key was never marked erased.
    assert run.kinds == ["case-created", "handover-date-passed"], run.kinds
    rows = [r.key for r in run.everything.get(citizen_keys_topic(APP_ID), [])]
    assert f"{KEY}:erased".encode() not in rows and any(k.startswith(KEY.encode()) for k in rows)


def test_no_topic_but_the_ingress_topics_holds_the_cpr_in_clear(run: Run) -> None:
    cpr = CPR.encode()
    assert any(cpr in (r.key or b"") for r in run.everything["dfdg.case-created"])  # the publishers did key by CPR
    leaks = [(topic, r.offset) for topic, recs in run.everything.items() if topic not in INGRESS_TOPICS
             for r in recs
             if cpr in (r.key or b"") or cpr in (r.value or b"") or any(cpr in (v or b"") for _k, v in r.headers or ())]
    assert not leaks, leaks
    assert CPR not in run.log


def _h(record: Any, name: str) -> str:
    return next((v.decode() for k, v in record.headers or () if k == name), "")
