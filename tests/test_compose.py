"""docker-compose.yml against the code, by parsing it: this machine has no Docker engine, so the
file is never run here; what can be checked without one is that both profiles have the shape
the local broker and cluster have (dfdg.localbroker) and that the worker is pointed at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dfdg.localbroker.cluster import LocalCluster
from dfdg.localbroker.manager import LocalBroker, kafka_version

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
# The broker settings both the compose file and dfdg.localbroker decide, compose name -> Kafka's.
INTERNAL_TOPICS = {
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "offsets.topic.replication.factor",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "transaction.state.log.replication.factor",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "transaction.state.log.min.isr",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "share.coordinator.state.topic.replication.factor",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "share.coordinator.state.topic.min.isr",
    # What a topic the broker auto-creates gets (touched before the worker creates it).
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "default.replication.factor",
    "KAFKA_MIN_INSYNC_REPLICAS": "min.insync.replicas",
}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def _profile(services: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in services.items() if name in v.get("profiles", [])}


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _brokers(services: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in services.items() if str(v.get("image", "")).startswith("apache/kafka")}


def test_every_kafka_service_runs_the_version_the_jars_are_pinned_to(services: dict[str, Any]) -> None:
    assert {v["image"] for v in _brokers(services).values()} == {f"apache/kafka:{kafka_version()}"}


def test_the_profiles_are_one_node_and_three_nodes(services: dict[str, Any]) -> None:
    single, cluster = _profile(services, "single"), _profile(services, "cluster")
    assert not set(single) & set(cluster)
    assert sorted(_brokers(single)) == ["kafka"]
    assert sorted(_brokers(cluster)) == ["kafka-1", "kafka-2", "kafka-3"]
    # Nothing else starts in both shapes but Prometheus, which scrapes "worker" in either.
    assert sorted(k for k, v in services.items() if not v.get("profiles")) == ["prometheus"]
    assert "worker" in services["worker-cluster"]["networks"]["default"]["aliases"]
    shared = [p for v in services.values() if not v.get("profiles") for p in v.get("ports", [])]
    for shape in (single, cluster):  # a shape's services and the shared ones can run together
        host_ports = shared + [p for v in shape.values() for p in v.get("ports", [])]
        assert len(host_ports) == len(set(host_ports))


def test_the_cluster_profile_has_the_local_clusters_shape(services: dict[str, Any], tmp_path: Path) -> None:
    nodes = _brokers(_profile(services, "cluster"))
    local = [_props(b.properties()) for b in LocalCluster(tmp_path, nodes=3, base_port=59092).brokers]
    envs = [nodes[f"kafka-{i}"]["environment"] for i in (1, 2, 3)]
    assert [e["KAFKA_NODE_ID"] for e in envs] == [1, 2, 3] == [int(p["node.id"]) for p in local]
    assert {e["KAFKA_PROCESS_ROLES"] for e in envs} == {local[0]["process.roles"]}
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert [v.split("@")[0] for v in next(iter(voters)).split(",")] == [
        v.split("@")[0] for v in local[0]["controller.quorum.voters"].split(",")]
    ids = {e["CLUSTER_ID"] for e in envs}
    assert len(ids) == 1 and len(next(iter(ids))) == 22 and not next(iter(ids)).startswith("-")
    for compose_name, kafka_name in INTERNAL_TOPICS.items():
        assert {str(e[compose_name]) for e in envs} == {local[0][kafka_name]}, compose_name
    worker = services["worker-cluster"]["environment"]
    advertised = sorted(e["KAFKA_ADVERTISED_LISTENERS"].split(",")[0].split("//")[1] for e in envs)
    assert sorted(worker["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == advertised
    assert services["kafka-init-cluster"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == worker["KAFKA_BOOTSTRAP_SERVERS"]


def test_the_single_profile_has_the_local_brokers_shape(services: dict[str, Any], tmp_path: Path) -> None:
    env = services["kafka"]["environment"]
    local = _props(LocalBroker(tmp_path, port=49092, controller_port=49093).properties())
    for compose_name, kafka_name in INTERNAL_TOPICS.items():
        assert str(env[compose_name]) == local[kafka_name], compose_name
    assert services["worker"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_both_workers_differ_only_in_where_kafka_is(services: dict[str, Any]) -> None:
    single, cluster = dict(services["worker"]["environment"]), dict(services["worker-cluster"]["environment"])
    single.pop("KAFKA_BOOTSTRAP_SERVERS")
    cluster.pop("KAFKA_BOOTSTRAP_SERVERS")
    assert single == cluster
    assert services["worker"]["secrets"] == services["worker-cluster"]["secrets"]


def test_a_worker_never_gets_the_admins_password(services: dict[str, Any], tmp_path: Path) -> None:
    """The secrets file the workers read (env_file) holds KAFKA_SASL_PASSWORD, the admin's, and
    streams.kafka_auth prefers KAFKA_SASL_PASSWORD over KAFKA_SASL_PASSWORD_FILE: each worker's
    environment must empty it, so it logs in with its own secret file."""
    from streams.kafka_auth import client_config

    example = (COMPOSE.parent / "deploy" / "kafka-secrets.env.example").read_text()
    secrets_env = dict(line.split("=", 1) for line in example.splitlines() if "=" in line and line[0] != "#")
    admin_password = secrets_env["KAFKA_SASL_PASSWORD"]
    own = tmp_path / "worker-kafka-password"
    own.write_text("the-workers-own\n")
    workers = {k: v for k, v in services.items() if v.get("command") == ["worker"]}
    assert sorted(workers) == ["worker", "worker-cluster"]
    for name, worker in workers.items():
        env_files = worker.get("env_file", [])
        assert env_files in ("deploy/kafka-secrets.env", ["deploy/kafka-secrets.env"]), name
        env = {**secrets_env, **{k: str(v) for k, v in worker["environment"].items()}}  # compose's order
        assert env["KAFKA_SASL_PASSWORD"] == "", name
        assert env["KAFKA_SASL_USERNAME"] != "admin", name
        assert env["KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/" + worker["secrets"][0], name
        password = client_config({**env, "KAFKA_SASL_PASSWORD_FILE": str(own)})["sasl_plain_password"]
        assert password == "the-workers-own" != admin_password, name
