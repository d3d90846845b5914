"""The worker's Prometheus metrics: every metric present, values as set, no personal data in labels."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from streams.lag import GroupLag, LagSnapshot, LagTracker, PartitionLag
from streams.metrics import Metrics

EXPECTED = {
    "dfdg_consumer_lag_messages", "dfdg_consumer_lag_seconds", "dfdg_events_in", "dfdg_events_out",
    "dfdg_dead_letters", "dfdg_deadlines_pending", "dfdg_deadline_oldest_overdue_seconds", "dfdg_archive_sagas",
    "dfdg_webhook_deliveries_failing", "dfdg_webhook_deliveries_held", "dfdg_processing_seconds",
}


def _snapshot(lag_seconds: float | None = 12.5) -> LagSnapshot:
    parts = (PartitionLag("dfdg.events", 0, 10, 25, lag_seconds), PartitionLag("dfdg.events", 1, 7, 7, 0.0))
    return LagSnapshot(1000.0, (GroupLag("dfdg", "Stable", 1, parts),))


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(metrics.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_metric_is_present_in_the_text_format() -> None:
    families = {f.name for f in text_string_to_metric_families(Metrics().render().decode())}
    assert families >= EXPECTED


def test_values_follow_the_setters() -> None:
    m = Metrics()
    m.event_in("CaseCreated")
    m.event_in("CaseCreated")
    m.event_out("CitizenNotified")
    m.dead_letter("E201")
    m.observe_processing(0.003)
    m.set_deadlines(4, 90.0)
    m.set_archive_sagas({"archived": 2, "awaiting_receipt": 1})
    m.set_webhooks(failing=3, held=1)
    m.set_lag(_snapshot())
    s = _samples(m)
    assert s[("dfdg_events_in_total", (("type", "CaseCreated"),))] == 2
    assert s[("dfdg_events_out_total", (("type", "CitizenNotified"),))] == 1
    assert s[("dfdg_dead_letters_total", (("code", "E201"),))] == 1
    assert s[("dfdg_processing_seconds_count", ())] == 1
    assert s[("dfdg_deadlines_pending", ())] == 4
    assert s[("dfdg_deadline_oldest_overdue_seconds", ())] == 90
    assert s[("dfdg_archive_sagas", (("state", "awaiting_receipt"),))] == 1
    assert s[("dfdg_webhook_deliveries_failing", ())] == 3
    assert s[("dfdg_webhook_deliveries_held", ())] == 1
    lag_key = (("group", "dfdg"), ("partition", "0"), ("topic", "dfdg.events"))
    assert s[("dfdg_consumer_lag_messages", lag_key)] == 15
    assert s[("dfdg_consumer_lag_seconds", lag_key)] == 12.5
    assert m.dead_letters_by_code() == {"E201": 1}


def test_set_lag_replaces_old_partitions_and_accepts_an_evaluated_report() -> None:
    m = Metrics()
    m.set_lag(_snapshot())
    report = LagTracker().observe(LagSnapshot(2000.0, (GroupLag("dfdg", "Stable", 1, (
        PartitionLag("dfdg.deadlines", 3, 1, 2, None),)),)))
    m.set_lag(report)
    lag = {k: v for k, v in _samples(m).items() if k[0] == "dfdg_consumer_lag_messages"}
    assert lag == {("dfdg_consumer_lag_messages", (("group", "dfdg"), ("partition", "3"),
                                                   ("topic", "dfdg.deadlines"))): 1}
    # Unknown age is left out rather than reported as 0.
    assert not [k for k in _samples(m) if k[0] == "dfdg_consumer_lag_seconds"]


def test_registry_is_private_not_the_global_one() -> None:
    m = Metrics()
    assert m.registry is not REGISTRY
    assert REGISTRY.get_sample_value("dfdg_deadlines_pending") is None


def test_labels_never_carry_a_cpr() -> None:
    m = Metrics()
    m.event_in("CaseCreated")
    m.dead_letter("E101")
    m.set_lag(_snapshot())
    for (_, labels), _value in _samples(m).items():
        for _, value in labels:
            assert not (len(value) == 10 and value.isdigit()), value
