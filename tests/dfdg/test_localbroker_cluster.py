"""The local cluster's shape (ports, quorum, one cluster id) and the replication rule topics get;
the cluster itself runs in tests/integration/test_cluster_broker_loss.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfdg.localbroker.cluster import LocalCluster, cluster_from_env
from dfdg.localbroker.manager import BrokerError
from streams.topics import pipeline_topics, replication_for


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_three_nodes_have_their_own_ports_storage_and_one_quorum(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3, base_port=59092)
    nodes = cluster.brokers
    assert [(b.port, b.controller_port) for b in nodes] == [(59092, 59093), (59094, 59095), (59096, 59097)]
    assert len({b.state_dir for b in nodes}) == 3
    props = [_props(b.properties()) for b in nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in props} == {
        "1@127.0.0.1:59093,2@127.0.0.1:59095,3@127.0.0.1:59097"}
    assert len({b.cluster_id for b in nodes}) == 1 and not nodes[0].cluster_id.startswith("-")
    assert {(p["offsets.topic.replication.factor"], p["transaction.state.log.min.isr"]) for p in props} == {("3", "2")}
    assert cluster.bootstrap == "127.0.0.1:59092,127.0.0.1:59094,127.0.0.1:59096"


def test_the_single_broker_keeps_its_single_node_settings(tmp_path: Path) -> None:
    from dfdg.localbroker.manager import LocalBroker

    props = _props(LocalBroker(tmp_path, port=49092, controller_port=49093).properties())
    assert props["node.id"] == "1" and props["controller.quorum.voters"] == "1@127.0.0.1:49093"
    assert props["offsets.topic.replication.factor"] == "1"


@pytest.mark.parametrize(("nodes", "expected"), [(1, ("1", "1")), (2, ("2", "1")), (3, ("3", "2")), (5, ("3", "2"))])
def test_a_topic_the_broker_auto_creates_is_replicated_like_the_workers(
        tmp_path: Path, nodes: int, expected: tuple[str, str]) -> None:
    """A subscriber or publisher touching a topic before the worker creates it must not leave
    it with one replica for good: the broker's defaults match streams.topics.replication_for."""
    from dfdg.localbroker.manager import LocalBroker

    brokers = ([LocalBroker(tmp_path, port=49092, controller_port=49093)] if nodes == 1
               else LocalCluster(tmp_path, nodes=nodes, base_port=59092).brokers)
    for broker in brokers:
        props = _props(broker.properties())
        assert props["auto.create.topics.enable"] == "true"
        assert (props["default.replication.factor"], props["min.insync.replicas"]) == expected
        assert props["offsets.topic.replication.factor"] == expected[0]
        assert props["transaction.state.log.replication.factor"] == expected[0]
    assert replication_for(nodes) == (int(expected[0]), int(expected[1]))


def test_stop_finds_the_cluster_that_was_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFDG_HOME", str(tmp_path))
    monkeypatch.setenv("DFDG_BROKER_PORT", "59092")
    monkeypatch.delenv("DFDG_BROKER_NODES", raising=False)
    assert cluster_from_env() is None
    LocalCluster(tmp_path, nodes=3, base_port=59092).cluster_id()
    found = cluster_from_env()
    assert found is not None and found.nodes == 3
    monkeypatch.setenv("DFDG_BROKER_SECURE", "1")
    with pytest.raises(BrokerError, match="single-node"):
        cluster_from_env(3)


@pytest.mark.parametrize(("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))])
def test_replication_follows_the_brokers_the_cluster_reports(brokers: int, expected: tuple[int, int]) -> None:
    assert replication_for(brokers) == expected


def test_faust_leader_topic_is_created_with_the_pipeline() -> None:
    assert "dfdg-__assignor-__leader" in {s.name for s in pipeline_topics(4, "dfdg")}


def test_starting_with_another_node_count_over_existing_storage_is_refused(tmp_path: Path) -> None:
    """`start --nodes 5` over a 3-node cluster's storage would give the nodes a voter set their
    storage was not formatted with: refused, with `reset` named, before any node is launched."""
    three = LocalCluster(tmp_path, nodes=3, base_port=59092)
    three.cluster_id()  # what the first start records
    assert three.recorded_nodes() == 3
    with pytest.raises(BrokerError, match=r"made with 3 nodes, not 5: run `dfdg broker reset` first"):
        LocalCluster(tmp_path, nodes=5, base_port=59092).start(timeout_s=1)
    assert not list(three.state_dir.glob("broker-*")), "no node was launched"
    assert LocalCluster(tmp_path, nodes=5, base_port=59192).recorded_nodes() is None  # another cluster
