"""The door holds each record to the one event type its topic carries (issue 13, point 1)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from dfdg.jsonio import event_from_json
from processors.events import EVENT_TYPES, topic_for
from processors.reference import E108_WRONG_TOPIC, ERROR_CODES
from schemas.codec import Codec
from schemas.topics import INGRESS_TOPICS, TOPIC_EVENT_TYPES, topic_carries
from streams.ingest import Admitted, Refused, admit
from streams.pseudonym import citizen_key
from streams.settings import DEV_PSEUDONYM_KEY
from tests.synthetic import synthetic_cpr

CPR = synthetic_cpr(random.Random("ingest-topic"))
NOW = datetime.now(UTC)


def _deceased() -> bytes:
    return Codec.default().encode(event_from_json("citizen-deceased", {
        "cpr": CPR, "date_of_death": (date.today() - timedelta(days=1)).isoformat()}))


def _registered() -> bytes:
    return Codec.default().encode(event_from_json("jobseeker-registered", {
        "cpr": CPR, "name": "Test Person", "registration_date": date.today().isoformat(),
        "benefit_category": "DAGPENGE", "unemployment_degree": 1.0, "job_titles": [], "municipality": "101"}))


def test_every_ingress_topic_carries_exactly_one_event_type_from_one_table() -> None:
    assert tuple(TOPIC_EVENT_TYPES) == INGRESS_TOPICS
    assert sorted(TOPIC_EVENT_TYPES.values(), key=lambda t: t.__name__) == sorted(EVENT_TYPES, key=lambda t: t.__name__)
    assert all(TOPIC_EVENT_TYPES[topic_for(t)] is t for t in EVENT_TYPES)


@pytest.mark.parametrize("topic", ["dfdg.absence-deleted", "dfdg.case-created", "dfdg.internal.citizen-events"])
def test_a_death_on_another_topic_is_refused_with_its_own_code(topic: str) -> None:
    result = admit(_deceased(), Codec.default(), DEV_PSEUDONYM_KEY, NOW, topic)
    assert isinstance(result, Refused) and result.code == E108_WRONG_TOPIC and E108_WRONG_TOPIC in ERROR_CODES
    # Sealed for the citizen it names, so the letter goes when the citizen is deleted; the
    # message names the types, never a value.
    assert result.citizen_key == citizen_key(DEV_PSEUDONYM_KEY, CPR)
    assert "CitizenDeceased" in result.message and CPR not in result.message


def test_a_valid_registration_on_the_case_topic_is_refused() -> None:
    result = admit(_registered(), Codec.default(), DEV_PSEUDONYM_KEY, NOW, "dfdg.case-created")
    assert isinstance(result, Refused) and result.code == E108_WRONG_TOPIC
    assert "JobseekerRegistered" in result.message and "CaseCreated" in result.message


def test_records_on_their_own_topics_are_admitted() -> None:
    assert isinstance(admit(_deceased(), Codec.default(), DEV_PSEUDONYM_KEY, NOW, "dfdg.citizen-deceased"), Admitted)
    assert isinstance(admit(_registered(), Codec.default(), DEV_PSEUDONYM_KEY, NOW, "dfdg.jobseeker-registered"),
                      Admitted)
    assert topic_carries("dfdg.citizen-deceased", Codec.default().decode(_deceased()))


def test_ingress_retention_is_a_setting_of_at_most_seven_days(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import ConfigError, Settings
    from streams.topics import DAY_MS, pipeline_topics

    monkeypatch.setenv("DFDG_DEV_MODE", "1")
    monkeypatch.setenv("DFDG_INGRESS_RETENTION_DAYS", "2")
    days = Settings.from_env().ingress_retention_days
    specs = {s.name: s for s in pipeline_topics(4, "dfdg", days)}
    assert all(specs[t].config["retention.ms"] == str(2 * DAY_MS) for t in INGRESS_TOPICS)
    monkeypatch.setenv("DFDG_INGRESS_RETENTION_DAYS", "30")
    with pytest.raises(ConfigError):
        Settings.from_env()
