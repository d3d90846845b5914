from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date
from pathlib import Path
from types import MappingProxyType

import bagit
import pytest
from fastavro import reader

from dfdg.cmd_archive import receive_and_publish, run_verify
from processors.archival import PackageContent, build_package_content
from processors.model import CaseState, CitizenState, PersonalData
from schemas.archive_records import ArchiveReceipt, ArchiveRejected
from sinks.archive_bag import RECEIVED_DIR, PackageConflictError, deliver, delivered_checksum, tagmanifest_sha256
from sinks.archive_receiver import Outcome, receive

CPR = "0101901234"


def _content(key: str = "key-1") -> PackageContent:
    return build_package_content(_state(key), date(2024, 5, 1))


def _state(key: str = "key-1") -> CitizenState:
    d = date(2021, 2, 1)
    cases = {
        "c1": CaseState("c1", "101", "101", 27, d, d, d, date(2021, 4, 2), case_type="INTEGRATION_PROGRAMME"),
        "c2": CaseState(
            "c2",
            "101",
            "101",
            19,
            d,
            d,
            d,
            date(2021, 4, 2),
            case_type="INTRODUCTION_COURSE",
            last_follow_up_on=date(2023, 3, 1),
        ),
        "c3": CaseState("c3", "101", "101", 18, d, d, d, date(2021, 4, 2), case_type="CHILD_BENEFIT"),
    }
    return CitizenState(citizen_key=key, personal=PersonalData(cpr=CPR), cases=MappingProxyType(cases))


def test_r9_4_package_is_a_valid_bag_named_by_package_id(tmp_path: Path) -> None:
    content = _content()
    delivery = deliver(tmp_path, content)
    assert delivery.written and delivery.path == tmp_path / content.package_id
    bag = bagit.Bag(str(delivery.path))
    bag.validate()  # raises if anything is off
    assert set(bag.algorithms) == {"sha256", "sha512"}
    assert (delivery.path / "manifest-sha256.txt").exists() and (delivery.path / "manifest-sha512.txt").exists()
    assert bag.info["Package-Id"] == content.package_id
    assert bag.info["Case-Types"] == "INTEGRATION_PROGRAMME, INTRODUCTION_COURSE"
    assert bag.info["Programmes"] == "introduction course, introduction programme"
    assert (bag.info["Period-Start"], bag.info["Period-End"]) == ("2021-02-01", "2024-05-01")
    assert bag.info["Payload-Oxum"] == delivery.payload_oxum
    # Only the temp-free package directory is left in the inbox.
    assert [p.name for p in tmp_path.iterdir()] == [content.package_id]


def test_r9_4_payload_holds_cases_and_the_schemas_they_were_written_with(tmp_path: Path) -> None:
    path = deliver(tmp_path, _content()).path
    lines = [json.loads(x) for x in (path / "data" / "cases.jsonl").read_text().splitlines()]
    assert [(x["case_id"], x["case_type"], x["programme"]) for x in lines] == [
        ("c1", "INTEGRATION_PROGRAMME", "introduction programme"),
        ("c2", "INTRODUCTION_COURSE", "introduction course"),
    ]
    assert lines[0]["cpr"] == CPR  # the archive must know whose case it is
    with (path / "data" / "cases.avro").open("rb") as f:
        avro = list(reader(f))
    assert [r["case_id"] for r in avro] == ["c1", "c2"] and avro[1]["last_follow_up_on"] == date(2023, 3, 1)
    assert (path / "data" / "schemas" / "ArchivedCase.avsc").exists()


def test_cpr_never_in_a_file_name_or_bag_metadata(tmp_path: Path) -> None:
    path = deliver(tmp_path, _content()).path
    for p in tmp_path.rglob("*"):
        assert CPR not in p.name
    for tag in path.glob("*.txt"):
        assert CPR not in tag.read_text()


def test_r7_2_redelivery_of_the_same_package_is_a_no_op(tmp_path: Path) -> None:
    first = deliver(tmp_path, _content())
    before = (first.path / "tagmanifest-sha256.txt").read_bytes()
    again = deliver(tmp_path, _content())
    assert not again.written and again.path == first.path
    assert (first.path / "tagmanifest-sha256.txt").read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 1


def test_r9_4_receipt_only_for_a_verified_bag(tmp_path: Path) -> None:
    content = _content()
    path = deliver(tmp_path, content).path
    digest = hashlib.sha256((path / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    (outcome,) = receive(tmp_path)
    assert isinstance(outcome, ArchiveReceipt)
    assert (outcome.package_id, outcome.citizen_key, outcome.tagmanifest_sha256) == (
        content.package_id,
        "key-1",
        digest,
    )
    assert (tmp_path / "received" / content.package_id).is_dir() and not path.exists()
    assert receive(tmp_path) == []  # a settled bag is not receipted twice
    assert not deliver(tmp_path, content).written  # the archive already holds it


def test_r9_4_one_byte_changed_in_data_gives_rejection_and_no_receipt(tmp_path: Path) -> None:
    content = _content()
    path = deliver(tmp_path, content).path
    target = path / "data" / "cases.jsonl"
    raw = bytearray(target.read_bytes())
    raw[10] ^= 0x01
    target.write_bytes(bytes(raw))
    outcomes = receive(tmp_path)
    assert len(outcomes) == 1 and not any(isinstance(o, ArchiveReceipt) for o in outcomes)
    (rejection,) = outcomes
    assert isinstance(rejection, ArchiveRejected) and rejection.package_id == content.package_id
    assert "cases.jsonl" in rejection.reason and CPR not in rejection.reason
    assert (tmp_path / "rejected" / content.package_id).is_dir()
    assert receive(tmp_path) == []  # not retried forever
    # After the rejection the same package id can be delivered afresh.
    assert deliver(tmp_path, content).written


def test_r9_4_corrupt_package_in_inbox_is_not_silently_accepted_as_delivered(tmp_path: Path) -> None:
    path = deliver(tmp_path, _content()).path
    (path / "data" / "cases.jsonl").write_text("tampered\n")
    with pytest.raises(PackageConflictError):
        deliver(tmp_path, _content())


async def test_r7_2_outcome_published_before_the_bag_is_moved(tmp_path: Path) -> None:
    good = deliver(tmp_path, _content("key-1")).path
    bad = deliver(tmp_path, _content("key-2")).path
    (bad / "data" / "cases.jsonl").write_text("x\n")
    seen: list[tuple[str, bool]] = []

    async def publish(outcome: Outcome) -> None:
        seen.append((outcome.package_id, (tmp_path / outcome.package_id).is_dir()))

    outcomes = await receive_and_publish(tmp_path, publish)
    kinds = {o.package_id: type(o) for o in outcomes}
    assert kinds == {good.name: ArchiveReceipt, bad.name: ArchiveRejected}
    assert all(still_in_inbox for _, still_in_inbox in seen) and len(seen) == 2


def test_archive_verify_prints_metadata_but_no_personal_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = deliver(tmp_path, _content()).path
    assert run_verify(argparse.Namespace(package_dir=path)) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "Case-Count: 2" in out and "2021-02-01" in out and CPR not in out
    (path / "data" / "cases.jsonl").write_text("x\n")
    assert run_verify(argparse.Namespace(package_dir=path)) == 1
    assert "INVALID" in capsys.readouterr().out


def _received_copy(inbox: Path) -> Path:
    """Deliver a fresh bag and let the archive's receiver move it to received/ (as P, then P.1, ...)."""
    written = deliver(inbox, _content(), reuse_received=False)
    assert written.written
    receive(inbox)
    return max((inbox / RECEIVED_DIR).iterdir(), key=lambda p: p.stat().st_mtime_ns)


def test_h3_a_replayed_retry_reuses_the_bag_the_first_retry_wrote_not_the_refused_one(tmp_path: Path) -> None:
    first = _received_copy(tmp_path)  # received/P: its receipt was refused (E308)
    refused = tagmanifest_sha256(first)
    # The retry writes bag 2, the archive receives it as received/P.1; the worker crashes before
    # the row, so the retry is handled again: it must find bag 2, not write a third.
    second = _received_copy(tmp_path)
    assert second.name == f"{first.name}.1" and tagmanifest_sha256(second) != refused
    again = deliver(tmp_path, _content(), refused_sha256=(refused,))
    assert not again.written and again.path == second
    assert again.tagmanifest_sha256 == tagmanifest_sha256(second)
    assert not (tmp_path / first.name).exists()  # nothing new in the inbox
    # Bag 2 still waiting in the inbox (not yet received) is reused the same way.
    inbox = tmp_path / "other"
    _received_copy(inbox)
    waiting = deliver(inbox, _content(), reuse_received=False)
    assert deliver(inbox, _content(), refused_sha256=(refused,)).path == waiting.path


def test_h3_delivered_checksum_is_the_newest_received_copy_not_refused(tmp_path: Path) -> None:
    first = _received_copy(tmp_path)
    second = _received_copy(tmp_path)
    package_id = first.name
    refused = tagmanifest_sha256(first)
    # Bag 2's receipt is checked against bag 2, not against bag 1 under received/P.
    assert delivered_checksum(tmp_path, package_id, (refused,)) == tagmanifest_sha256(second)
    assert delivered_checksum(tmp_path, package_id) == tagmanifest_sha256(second)  # the newest
    assert delivered_checksum(tmp_path, package_id, (refused, tagmanifest_sha256(second))) is None
    assert delivered_checksum(tmp_path, "no-such-package") is None
