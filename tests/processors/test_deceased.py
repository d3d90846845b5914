from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType

import pytest

from processors.archival import package_id_for
from processors.deceased import (
    HANDLERS,
    ArchiveSaga,
    AwaitReceipt,
    BuildAndDeliver,
    DeleteArchived,
    DeleteNow,
    EmitDeletionCompleted,
    RaiseAlert,
    classify_areas,
    delete_areas,
    deletion_notice,
    next_actions,
    on_citizen_deceased,
    on_deleted,
    on_delivered,
    on_receipt,
    on_rejection,
    receipt_refusal,
    retry_delivery,
    start_saga,
)
from processors.events import AbsenceType, CitizenDeceased
from processors.model import Absence, CaseState, CitizenState, Deadline, DeletionRequested, Notice, PersonalData
from schemas.archive_records import ArchiveReceipt

NOW = datetime(2024, 5, 3, 8, tzinfo=UTC)
KEY = "citizen-key-7"
DEATH = date(2024, 5, 1)


def _case(case_id: str, group: int, case_type: str) -> CaseState:
    d = date(2021, 2, 1)
    return CaseState(case_id, "101", "101", group, d, d, d, date(2021, 4, 2), case_type=case_type)


def _state(*, archived_case: bool = True) -> CitizenState:
    cases = {"c2": _case("c2", 18, "HOUSING_SUPPORT")}
    if archived_case:
        cases["c1"] = _case("c1", 27, "INTEGRATION_PROGRAMME")
    pending = {
        "R5.3|c1|2024-06-01": Deadline("R5.3", date(2024, 6, 1), "c1"),
        "R8.1|ref-1|2025-01-01": Deadline("R8.1", date(2025, 1, 1), "ref-1"),
    }
    return CitizenState(
        citizen_key=KEY,
        personal=PersonalData(cpr="0101901234", name="Test Person"),
        akasse="12",
        municipality="101",
        registered_jobseeker=True,
        cases=MappingProxyType(cases),
        absences=MappingProxyType({"a1": Absence("a1", AbsenceType.HOLIDAY, date(2024, 1, 1))}),
        records=MappingProxyType({"ref-1": ("REFERRAL_RECORD", date(2023, 1, 1))}),
        pending=MappingProxyType(pending),
        notified=frozenset({"jobcenter:101", "akasse:12"}),
    )


def _death(event_id: str = "death-1") -> CitizenDeceased:
    return CitizenDeceased(event_id=event_id, occurred_at=NOW, producer="cpr", cpr="0101901234", date_of_death=DEATH)


SHA = "ab" * 32  # the delivered bag's tag-manifest checksum


def _receipt(package_id: str, sha256: str = SHA) -> ArchiveReceipt:
    return ArchiveReceipt(
        receipt_id="r",
        package_id=package_id,
        citizen_key=KEY,
        tagmanifest_sha256=sha256,
        payload_oxum="1.1",
        received_at=NOW,
    )


def _saga() -> ArchiveSaga:
    saga, _ = start_saga(on_citizen_deceased(_state(), _death(), NOW).state, _death(), NOW)
    return saga


# ---- the handler ----


def test_r7_3_death_cancels_all_pending_deadlines_and_notifies() -> None:
    d = on_citizen_deceased(_state(), _death(), NOW)
    assert d.cancel_deadlines == ("R5.3|c1|2024-06-01", "R8.1|ref-1|2025-01-01")
    assert d.state.pending == {} and d.state.deceased_on == DEATH
    notice, deletion = d.outputs
    assert isinstance(notice, Notice) and notice.kind == "citizen-deceased"
    assert isinstance(deletion, DeletionRequested)
    assert (deletion.rule, deletion.scope, deletion.archive) == ("R7.1", "citizen", True)
    assert deletion.output_id == package_id_for(KEY, DEATH)


def test_r7_1_death_without_archived_cases_requests_deletion_without_archive() -> None:
    d = on_citizen_deceased(_state(archived_case=False), _death(), NOW)
    deletion = d.outputs[1]
    assert isinstance(deletion, DeletionRequested) and deletion.archive is False


def test_r7_3_repeated_death_report_changes_nothing_and_sends_nothing() -> None:
    first = on_citizen_deceased(_state(), _death(), NOW)
    again = on_citizen_deceased(first.state, _death("death-2"), NOW)
    assert again.state == first.state and again.outputs == () and again.cancel_deadlines == ()
    assert HANDLERS[CitizenDeceased] is on_citizen_deceased


# ---- data areas ----


def test_r7_1_areas_split_by_archive_obligation() -> None:
    to_archive, at_once = classify_areas(_state())
    assert to_archive == (
        "case/c1/CV",
        "case/c1/INTEGRATION_CONTRACT",
        "case/c1/OTHER_INFORMATION",
        "case/c1/ATTACHMENTS",
        "identity",
    )
    assert at_once == (
        "case/c2/CV",
        "case/c2/INTEGRATION_CONTRACT",
        "case/c2/OTHER_INFORMATION",
        "case/c2/ATTACHMENTS",
        "record/ref-1",
        "registration",
        "absences",
    )


def test_r7_1_identity_deleted_at_once_when_nothing_is_archived() -> None:
    to_archive, at_once = classify_areas(_state(archived_case=False))
    assert to_archive == () and "identity" in at_once


def test_r7_3_deleting_everything_keeps_only_what_reports_the_deletion() -> None:
    state = on_citizen_deceased(_state(), _death(), NOW).state
    to_archive, at_once = classify_areas(state)
    half = delete_areas(state, at_once)
    assert set(half.cases) == {"c1"} and half.personal.cpr == "0101901234"
    assert half.personal.name is None and half.akasse is None and half.records == {} and half.absences == {}
    empty = delete_areas(half, to_archive)
    assert empty.is_empty and empty.cases == {}
    assert empty.notified == state.notified and empty.deceased_on == DEATH


# ---- the saga, step by step ----


def test_r7_2_pending_builds_package_before_deleting_and_never_deletes_archived_areas() -> None:
    saga, actions = start_saga(on_citizen_deceased(_state(), _death(), NOW).state, _death(), NOW)
    assert saga.step == "pending" and saga.package_id == package_id_for(KEY, DEATH)
    assert actions == (BuildAndDeliver(saga.package_id), DeleteNow(saga.areas_deleted_at_once))
    assert next_actions(saga) == actions


def test_r7_2_delivered_awaits_receipt() -> None:
    saga = on_delivered(_saga(), SHA)
    assert saga.step == "delivered" and next_actions(saga) == (AwaitReceipt(saga.package_id),)
    assert on_deleted(saga) == saga  # no way to "deleted" without a receipt


def test_r7_2_receipt_allows_deleting_archived_areas_and_reporting() -> None:
    saga = on_receipt(on_delivered(_saga(), SHA), _receipt(_saga().package_id))
    assert saga.step == "receipted" and saga.receipt_sha256 == "ab" * 32
    every = saga.areas_deleted_at_once + saga.areas_to_archive
    assert next_actions(saga) == (DeleteArchived(saga.areas_to_archive), EmitDeletionCompleted(saga.package_id, every))
    done = on_deleted(saga)
    assert done.step == "deleted" and next_actions(done) == ()


def test_r7_2_receipt_for_another_package_is_ignored() -> None:
    saga = on_delivered(_saga(), SHA)
    assert on_receipt(saga, _receipt("some-other-package")) == saga


def test_r7_2_receipt_while_still_pending_is_accepted() -> None:
    # Crash after delivery, before "delivered" was persisted: the receipt still counts, checked
    # against the checksum the shell reads from the delivered package.
    saga = on_receipt(_saga(), _receipt(_saga().package_id), delivered_sha256=SHA)
    assert saga.step == "receipted" and saga.delivered_sha256 == SHA


def test_r7_2_receipt_not_matching_the_delivered_package_is_refused_and_the_saga_waits() -> None:
    delivered = on_delivered(_saga(), SHA)
    forged = _receipt(delivered.package_id, sha256="cd" * 32)
    assert receipt_refusal(delivered, forged) is not None
    assert on_receipt(delivered, forged) == delivered  # still waiting for a receipt
    assert next_actions(delivered) == (AwaitReceipt(delivered.package_id),)
    # A pending saga with no known delivered package trusts no receipt on its package id alone.
    assert on_receipt(_saga(), _receipt(_saga().package_id)) == _saga()
    assert receipt_refusal(_saga(), _receipt(_saga().package_id)) is not None
    # The matching receipt still goes through afterwards.
    assert on_receipt(delivered, _receipt(delivered.package_id)).step == "receipted"


def test_r7_2_rejection_alerts_and_deletes_nothing_archived() -> None:
    saga = on_rejection(on_delivered(_saga(), SHA), _saga().package_id, "checksum mismatch")
    assert saga.step == "rejected"
    assert next_actions(saga) == (RaiseAlert(saga.package_id, "checksum mismatch"),)
    assert on_deleted(saga) == saga
    retried = retry_delivery(saga)
    assert retried.step == "pending" and retried.package_id == saga.package_id
    assert BuildAndDeliver(saga.package_id) in next_actions(retried)


def test_r7_2_rejection_after_receipt_does_not_undo_it() -> None:
    saga = on_receipt(on_delivered(_saga(), SHA), _receipt(_saga().package_id))
    assert on_rejection(saga, saga.package_id, "late duplicate") == saga


def test_r7_1_nothing_to_archive_deletes_at_once_and_reports() -> None:
    state = on_citizen_deceased(_state(archived_case=False), _death(), NOW).state
    saga, actions = start_saga(state, _death(), NOW)
    assert actions == (
        DeleteNow(saga.areas_deleted_at_once),
        EmitDeletionCompleted(saga.package_id, saga.areas_deleted_at_once),
    )
    assert on_delivered(saga, SHA) == saga
    assert on_deleted(saga).step == "deleted"


def test_r7_3_deletion_notice_is_the_post_mortem_kind_and_stable() -> None:
    saga = _saga()
    assert deletion_notice(saga).kind == "citizen-deleted"
    assert deletion_notice(saga) == deletion_notice(on_delivered(saga, SHA))


# ---- crash safety: run the saga, crash after every possible operation, resume ----


@dataclass
class World:
    state: CitizenState
    archive: set[str] = field(default_factory=set)
    deliveries: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    receipted: set[str] = field(default_factory=set)

    def perform(self, action: object) -> None:
        if isinstance(action, BuildAndDeliver):
            self.deliveries.append(action.package_id)
            assert self.state.personal.cpr is not None, "package built after the identity was deleted"
            self.archive.add(action.package_id)  # delivery of an existing id is a no-op
        elif isinstance(action, DeleteNow):
            self.state = delete_areas(self.state, action.areas)
        elif isinstance(action, DeleteArchived):
            assert action.areas and all(pid in self.receipted for pid in self.archive), "deleted before receipt"
            self.state = delete_areas(self.state, action.areas)
        elif isinstance(action, EmitDeletionCompleted):
            self.completed.append(action.package_id)


def _run(state: CitizenState, crash_after: int | None) -> tuple[World, ArchiveSaga]:
    world = World(state)
    persisted, _ = start_saga(state, _death(), NOW)
    ops, crashed = 0, False
    for _ in range(20):  # bounded: a saga that does not finish fails the test
        saga = persisted
        if saga.step == "deleted":
            return world, saga
        interrupted = False
        for action in next_actions(saga):
            world.perform(action)
            ops += 1
            if ops == crash_after and not crashed:
                crashed = interrupted = True
                break
        if interrupted:
            continue  # in-memory progress lost; resume from what was persisted
        if saga.step == "pending" and saga.areas_to_archive:
            persisted = on_delivered(saga, SHA)
        elif saga.step == "delivered":
            world.receipted |= world.archive  # the archive verifies what it holds
            persisted = on_receipt(saga, _receipt(saga.package_id))
        else:
            persisted = on_deleted(saga)
    raise AssertionError("saga did not finish")


@pytest.mark.parametrize("crash_after", [None, 1, 2, 3, 4, 5])
def test_r7_2_crash_at_any_point_resumes_without_skipping_or_new_package(crash_after: int | None) -> None:
    state = on_citizen_deceased(_state(), _death(), NOW).state
    world, saga = _run(state, crash_after)
    assert saga.step == "deleted"
    assert set(world.deliveries) == {package_id_for(KEY, DEATH)}  # repeated delivery, same id
    assert len(world.archive) == 1
    assert world.state.is_empty and world.state.cases == {}
    assert world.completed and set(world.completed) == {saga.package_id}


def test_r7_2_resume_after_crash_between_delivered_and_deleted() -> None:
    state = on_citizen_deceased(_state(), _death(), NOW).state
    saga, _ = start_saga(state, _death(), NOW)
    delivered = on_delivered(saga, SHA)  # persisted; the process dies here
    # Restarted: nothing is delivered again and nothing archived is deleted until the receipt.
    assert next_actions(delivered) == (AwaitReceipt(saga.package_id),)
    receipted = on_receipt(delivered, _receipt(saga.package_id))  # persisted; dies again before deleting
    resumed = next_actions(receipted)
    assert not any(isinstance(a, BuildAndDeliver) for a in resumed)
    assert resumed[0] == DeleteArchived(saga.areas_to_archive)
    assert on_receipt(receipted, _receipt(saga.package_id)) == receipted  # a repeated receipt changes nothing
