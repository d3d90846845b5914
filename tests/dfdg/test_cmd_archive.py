"""``dfdg archive retry`` as an operator runs it, without a broker: what it refuses to send (R7.2)."""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import bagit
import pytest

from dfdg.cmd_archive import citizen_key_of_package, retry_request, run_retry
from processors.archive_retry import RETRY_BY_OPERATOR
from processors.model import deterministic_id
from sinks.archive_bag import RECEIVED_DIR
from tests.synthetic import synthetic_cpr


def test_r7_2_dfdg_archive_retry_refuses_a_citizen_key_that_is_not_one(tmp_path: Path) -> None:
    # A CPR typed as --citizen-key must never reach a topic (it would be the record's key).
    cpr = synthetic_cpr(random.Random("cli"))
    done = subprocess.run(
        [sys.executable, "-m", "dfdg.cli", "archive", "retry", deterministic_id("pkg-1"), "--inbox", str(tmp_path),
         "--citizen-key", cpr, "--bootstrap", "127.0.0.1:1"],
        env={**os.environ}, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing was sent" in done.stdout and cpr not in done.stdout + done.stderr


def test_m1_dfdg_archive_retry_refuses_a_package_id_that_is_not_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A CPR typed as the package id would travel in clear on the receipts topic and its letters.
    cpr = synthetic_cpr(random.Random("cli-package"))
    for package_id in (cpr, f"{cpr[:6]}-{cpr[6:]}", "pkg-1", deterministic_id("p").upper()):
        args = argparse.Namespace(package_id=package_id, inbox=tmp_path, citizen_key="ab" * 16,
                                  bootstrap="127.0.0.1:1")
        assert run_retry(args) == 2
        out = capsys.readouterr()
        assert "package_id" in out.out and "nothing was sent" in out.out
        assert package_id not in out.out + out.err


def test_r7_2_dfdg_archive_retry_finds_the_citizen_key_of_a_received_package(tmp_path: Path) -> None:
    # After a refused receipt (E308) the bag is under received/, not rejected/.
    bag = tmp_path / RECEIVED_DIR / "pkg-1"
    bag.mkdir(parents=True)
    (bag / "cases.jsonl").write_text("{}\n")
    bagit.make_bag(str(bag), bag_info={"DFDG-Citizen-Key": "ab" * 16})
    assert citizen_key_of_package(tmp_path, "pkg-1") == "ab" * 16
    assert citizen_key_of_package(tmp_path, "pkg-2") is None


def test_r7_2_an_operator_retry_id_is_derived_from_what_the_record_carries() -> None:
    when = datetime(2024, 5, 3, 8, 0, 0, 123456, tzinfo=UTC)
    retry = retry_request("pkg-1", "ab" * 16, when)
    # requested_at travels in milliseconds; the id is derived from exactly that (docs/events.md).
    assert retry.requested_at == when.replace(microsecond=123000)
    assert retry.retry_id == deterministic_id("archive-retry", "pkg-1", RETRY_BY_OPERATOR,
                                              retry.requested_at.isoformat())
