"""The worker runs on its ACLs alone: the real worker logs in as ``User:dfdg-worker`` after
``acl sync``, a publisher principal writes case-created, and the jobcentre principal reads its
notification (issue 8). Needs ``client_config()`` / ``faust_credentials()`` threaded through
streams/app.py, streams/topics.py and dfdg/runworker.py."""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from pathlib import Path

from dfdg.jsonio import event_from_json
from dfdg.publisher import Publisher
from schemas.codec import Codec
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.security.conftest import APP_ID, SecureKafka
from tests.security.kafka_io import read
from tests.synthetic import synthetic_cpr
from tests.worker_process import WorkerProcess


def test_r1_1_worker_acls_suffice_for_case_created_to_reach_the_jobcentre(secure_kafka: SecureKafka,
                                                                          tmp_path: Path) -> None:
    sk = secure_kafka
    sk.sync()
    worker_env = {**sk.env_for("dfdg-worker"), "DFDG_SUBSCRIBERS_FILE": str(sk.subscribers_file)}
    worker = WorkerProcess(sk.bootstrap, APP_ID, tmp_path / "worker", extra_env=worker_env).start()
    cpr = synthetic_cpr(random.Random("secure-worker"))
    try:
        event = event_from_json("case-created", {
            "cpr": cpr, "case_id": "case-secure-1", "receiving_municipality": "101",
            "jobcenter_municipality": "101", "contact_group": 18,
            "handover_date": (date.today() + timedelta(days=30)).isoformat(), "cv_number": "CV-1",
        })

        async def publish() -> None:
            async with Publisher(sk.bootstrap, **sk.user("publisher-fagsystem")) as publisher:
                await publisher.publish(event)

        asyncio.run(publish())
        codec, key = Codec.default(), citizen_key(DEV_PSEUDONYM_KEY, cpr)
        mine = []
        for _ in range(20):
            values = asyncio.run(read(sk.bootstrap, sk.user("jobcenter-101"), "dfdg.notify.jobcenter.101",
                                      "jobcenter.101.secure-test", timeout_s=5))
            mine += [n for n in map(codec.decode, values) if getattr(n, "citizen_key", None) == key]
            if mine:
                break
        assert [n.kind for n in mine] == ["case-created"], worker.tail()
    finally:
        worker.stop()
    log = "\n".join(worker.lines)
    assert cpr not in log and sk.passwords["dfdg-worker"] not in log
    assert "TopicAuthorizationFailed" not in log and "GroupAuthorizationFailed" not in log, worker.tail()
