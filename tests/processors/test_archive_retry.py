"""Sagas that cannot get stuck (R7.2): capped backoff after a failed delivery, an operator's retry
after a rejection, and what operators see (processors.archive_retry)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from processors.archive_retry import (
    DELIVERY_RETRY_CAP,
    DELIVERY_RETRY_FIRST,
    RETRY_BY_OPERATOR,
    RETRY_BY_TIMER,
    RetryPolicy,
    delivery_allowed,
    delivery_backoff,
    due_after_recovery,
    oldest_wait_seconds,
    on_delivery_failed,
    on_retry_requested,
    retry_due,
    waiting_by_step,
)
from processors.deceased import (
    BuildAndDeliver,
    next_actions,
    on_delivered,
    on_receipt,
    on_receipt_refused,
    on_rejection,
    receipt_refusal,
)
from tests.processors.test_deceased import NOW, SHA, _receipt, _saga


def test_r7_2_failed_delivery_retries_with_capped_backoff() -> None:
    saga = _saga()
    waits = []
    for n in range(1, 10):
        saga = on_delivery_failed(saga, NOW, "OSError")
        waits.append(saga.retry_at - NOW if saga.retry_at else None)
        assert saga.step == "pending" and saga.failed_deliveries == n and saga.last_error == "OSError"
    assert waits[0] == DELIVERY_RETRY_FIRST and waits[1] == 2 * DELIVERY_RETRY_FIRST
    assert max(w for w in waits if w) == DELIVERY_RETRY_CAP == waits[-1]  # capped, never longer
    assert delivery_backoff(10_000) == DELIVERY_RETRY_CAP
    # Not before the backoff is over; then the timer wakes it and delivery is allowed again.
    assert not retry_due(saga, NOW) and not delivery_allowed(saga, NOW)
    later = NOW + DELIVERY_RETRY_CAP
    assert retry_due(saga, later) and delivery_allowed(saga, later)
    assert BuildAndDeliver(saga.package_id) in next_actions(saga)  # still owes the same package
    # A delivery that then succeeds clears the failure record.
    delivered = on_delivered(saga, SHA)
    assert (delivered.step, delivered.failed_deliveries, delivered.retry_at) == ("delivered", 0, None)


def test_r7_2_rejected_package_waits_for_an_operator_not_the_timer() -> None:
    rejected = on_rejection(on_delivered(_saga(), SHA), _saga().package_id, "Payload-Oxum mismatch")
    far = NOW + timedelta(days=30)
    assert not retry_due(rejected, far)
    assert on_retry_requested(rejected, RETRY_BY_TIMER, far) == rejected
    retried = on_retry_requested(rejected, RETRY_BY_OPERATOR, far)
    assert retried.step == "pending" and retried.delivered_sha256 is None and delivery_allowed(retried, far)
    assert BuildAndDeliver(rejected.package_id) in next_actions(retried)
    # An operator may also cut a failed delivery's backoff short.
    failed = on_delivery_failed(_saga(), NOW, "OSError")
    assert delivery_allowed(on_retry_requested(failed, RETRY_BY_OPERATOR, NOW), NOW)


def test_r7_2_operators_see_how_many_sagas_wait_and_for_how_long() -> None:
    pending = _saga()
    delivered = on_delivered(_saga(), SHA)
    rejected = on_rejection(delivered, delivered.package_id, "bad bag")
    counts = waiting_by_step([pending, delivered, rejected, rejected])
    assert counts == {"pending": 1, "delivered": 1, "rejected": 2}
    assert waiting_by_step([]) == {"pending": 0, "delivered": 0, "rejected": 0}
    assert oldest_wait_seconds([pending, delivered], NOW + timedelta(hours=2)) == 7200.0
    assert oldest_wait_seconds([], NOW) == 0.0


def test_r7_2_any_backoff_policy_doubles_to_its_cap_and_never_overflows() -> None:
    policy = RetryPolicy(first=timedelta(hours=1), cap=timedelta(days=1))
    assert delivery_backoff(2, policy) == timedelta(hours=2)
    assert delivery_backoff(10_000, policy) == timedelta(days=1)  # not an OverflowError
    assert delivery_backoff(10_000) == DELIVERY_RETRY_CAP
    failed = on_delivery_failed(on_delivery_failed(_saga(), NOW, "OSError", policy), NOW, "OSError", policy)
    assert failed.retry_at == NOW + timedelta(hours=2)
    for first, cap in ((timedelta(0), timedelta(1)), (timedelta(seconds=3), timedelta(seconds=2))):
        with pytest.raises(ValueError, match="0 < first <= cap"):
            RetryPolicy(first=first, cap=cap)


def test_r7_2_e308_an_operator_retry_delivers_again_a_package_whose_receipt_was_refused() -> None:
    delivered = on_delivered(_saga(), SHA)
    # The archive receipted a bag whose checksum is not the delivered one's: refused, remembered.
    reason = receipt_refusal(delivered, _receipt(delivered.package_id, "cd" * 32))
    assert reason is not None
    refused = on_receipt_refused(delivered, reason)
    assert refused.step == "delivered" and refused.receipt_refused == reason
    # The timer never moves it; an operator's retry sends it back to delivering, at once, and keeps
    # the refusal so the delivery writes a fresh bag (the archive holds the received one).
    assert on_retry_requested(refused, RETRY_BY_TIMER, NOW) == refused
    retried = on_retry_requested(refused, RETRY_BY_OPERATOR, NOW)
    assert retried.step == "pending" and retried.delivered_sha256 is None and retried.receipt_refused == reason
    assert delivery_allowed(retried, NOW) and BuildAndDeliver(refused.package_id) in next_actions(retried)
    again = on_delivered(retried, "ef" * 32)
    assert again.step == "delivered" and again.receipt_refused is None and again.delivered_sha256 == "ef" * 32
    # The refused receipt's checksum and the delivered one's are recorded: the retry avoids those bags.
    refused = on_receipt_refused(delivered, reason, "cd" * 32)
    assert on_retry_requested(refused, RETRY_BY_OPERATOR, NOW).refused_sha256 == ("cd" * 32, SHA)
    # A receipt that matches clears the refusal: the saga is receipted.
    receipted = on_receipt(refused, _receipt(refused.package_id))
    assert receipted.step == "receipted" and receipted.receipt_refused is None


def test_r7_2_a_pending_saga_that_was_never_retried_is_due_after_recovery() -> None:
    # Written by a worker from before retries: its delivery failed and nothing recorded a retry time.
    stuck = _saga()
    assert stuck.step == "pending" and stuck.retry_at is None and stuck.areas_to_archive
    assert not retry_due(stuck, NOW + timedelta(days=30))  # the timer's own rule never wakes it ...
    assert due_after_recovery(stuck)  # ... so a rebuild does, once
    assert not due_after_recovery(on_delivery_failed(stuck, NOW, "OSError"))  # has a retry time: the timer's
    assert not due_after_recovery(on_delivered(stuck, SHA))
    nothing_to_archive = replace(stuck, areas_to_archive=())
    assert not due_after_recovery(nothing_to_archive)


def test_h2_an_operator_retry_delivers_again_a_delivered_saga_whose_receipt_was_never_seen() -> None:
    # H2: the receipt came before the replayed death (E309), the saga then found the bag in
    # received/ and went delivered; the archive sends no second receipt, and the timer never wakes
    # a delivered saga. An operator's retry must move it, avoiding the bag already received.
    delivered = on_delivered(_saga(), SHA)
    assert delivered.receipt_refused is None
    assert on_retry_requested(delivered, RETRY_BY_TIMER, NOW) == delivered
    retried = on_retry_requested(delivered, RETRY_BY_OPERATOR, NOW)
    assert retried.step == "pending" and retried.delivered_sha256 is None and retried.refused_sha256 == (SHA,)
    assert delivery_allowed(retried, NOW) and BuildAndDeliver(delivered.package_id) in next_actions(retried)
    # The fresh bag's receipt completes it.
    again = on_delivered(retried, "ef" * 32)
    receipted = on_receipt(again, _receipt(again.package_id, "ef" * 32))
    assert receipted.step == "receipted" and receipted.refused_sha256 == ()


def test_h3_a_refused_receipt_records_the_checksum_it_named() -> None:
    delivered = on_delivered(_saga(), SHA)
    refused = on_receipt_refused(delivered, "mismatch", "cd" * 32)
    # Both are bags the archive received and will not receipt again (the receipt may be the damaged part).
    assert refused.refused_sha256 == ("cd" * 32, SHA) and refused.delivered_sha256 == SHA
    # A saga still pending (a crash before "delivered") records the checksum the shell read.
    pending = on_receipt_refused(_saga(), "mismatch", "cd" * 32, "ab" * 32)
    assert pending.refused_sha256 == ("cd" * 32, "ab" * 32)
    # Replayed after a crash before the row, the retry is handled from the same row: same result.
    assert on_retry_requested(refused, RETRY_BY_OPERATOR, NOW) == on_retry_requested(refused, RETRY_BY_OPERATOR, NOW)
    # Delivered again (bag 2), the checksum to avoid stays until a receipt; a further retry (bag 2's
    # receipt lost too) avoids both bags, so it writes a third, the one the archive will receipt.
    again = on_delivered(on_retry_requested(refused, RETRY_BY_OPERATOR, NOW), "ef" * 32)
    assert again.refused_sha256 == ("cd" * 32, SHA) and again.receipt_refused is None
    assert on_retry_requested(again, RETRY_BY_OPERATOR, NOW).refused_sha256 == ("cd" * 32, SHA, "ef" * 32)
