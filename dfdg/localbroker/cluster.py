"""A local cluster of KRaft nodes: ``dfdg broker start --nodes 3``.

Each node is a :class:`LocalBroker` (broker and controller in one JVM) with its own ports and
storage: node ``i`` (1-based) listens on ``base_port + 2(i-1)`` and its controller on the next
port, so three nodes from 9092 take 9092-9097. All of them are controllers (a quorum of three
survives losing one) and are formatted with one cluster id kept in the cluster's state dir,
``$DFDG_HOME/cluster-<base port>/``, beside the nodes' own ``broker-<port>/`` dirs with their
pid files. Every node is started and stopped by its pid, like the single broker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dfdg.localbroker.manager import BrokerError, LocalBroker, _cluster_id, default_home


@dataclass(frozen=True)
class LocalCluster:
    home: Path
    nodes: int = 3
    base_port: int = 9092
    heap: str = "384m"  # three JVMs share the machine with the worker and the tests

    @property
    def state_dir(self) -> Path:
        return self.home / f"cluster-{self.base_port}"

    def cluster_id(self) -> str:
        """The id every node is formatted with, made once and kept with the cluster."""
        path = self.state_dir / "cluster.id"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(_cluster_id())
            (self.state_dir / "nodes").write_text(str(self.nodes))
        return path.read_text().strip()

    def recorded_nodes(self) -> int | None:
        """The node count the cluster's storage was made with (None: no storage yet)."""
        path = self.state_dir / "nodes"
        return int(path.read_text().strip()) if path.exists() else None

    def node(self, node_id: int) -> LocalBroker:
        if not 1 <= node_id <= self.nodes:
            raise BrokerError(f"node {node_id} is not in this {self.nodes}-node cluster")
        port = self.base_port + 2 * (node_id - 1)
        voters = ",".join(f"{i}@127.0.0.1:{self.base_port + 2 * (i - 1) + 1}" for i in range(1, self.nodes + 1))
        return LocalBroker(home=self.state_dir, port=port, controller_port=port + 1, heap=self.heap,
                           node_id=node_id, voters=voters, cluster_id=self.cluster_id(), replication=self.nodes)

    @property
    def brokers(self) -> list[LocalBroker]:
        return [self.node(i) for i in range(1, self.nodes + 1)]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def start(self, timeout_s: float = 120.0) -> str:
        """Launch every node that is down, then wait for all: none answers before a majority of
        the controllers runs, so waiting for one before launching the next would never end.

        Storage made with another node count is refused: its nodes were formatted with that
        quorum, and KRaft does not take a new voter set from a changed config."""
        recorded = self.recorded_nodes()
        if recorded is not None and recorded != self.nodes:
            raise BrokerError(
                f"the cluster at port {self.base_port} ({self.state_dir}) was made with {recorded} nodes, not "
                f"{self.nodes}: run `dfdg broker reset` first (it deletes the cluster's data), then start it "
                f"with --nodes {self.nodes}; or start it with --nodes {recorded}")
        brokers = self.brokers
        for broker in brokers:
            if broker.pid() is None:
                broker.launch()
        lines = [f"node {b.node_id}: {b.wait_ready(timeout_s)}" for b in brokers]
        return "\n".join([*lines, f"bootstrap: {self.bootstrap}"])

    def stop(self) -> str:
        return "\n".join(f"node {b.node_id}: {b.stop()}" for b in self.brokers)

    def status(self) -> tuple[bool, str]:
        states = [(b.node_id, *b.status()) for b in self.brokers]
        return all(up for _, up, _ in states), "\n".join(f"node {i}: {text}" for i, _, text in states)

    def reset(self) -> None:
        """Stop every node and delete the cluster's storage (a fresh cluster on next start)."""
        import shutil

        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def cluster_from_env(nodes: int | None = None) -> LocalCluster | None:
    """The local cluster at DFDG_BROKER_PORT of ``nodes`` (else DFDG_BROKER_NODES, else the node
    count a cluster started there recorded); None for the single broker."""
    home = default_home()
    base = int(os.environ.get("DFDG_BROKER_PORT", "9092"))
    if nodes is None and os.environ.get("DFDG_BROKER_NODES"):
        nodes = int(os.environ["DFDG_BROKER_NODES"])
    if nodes is None:
        recorded = home / f"cluster-{base}" / "nodes"
        nodes = int(recorded.read_text()) if recorded.exists() else 1
    if nodes <= 1:
        return None
    if os.environ.get("DFDG_BROKER_SECURE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise BrokerError("the secure local broker (DFDG_BROKER_SECURE) is single-node; start the cluster without it")
    return LocalCluster(home=home, nodes=nodes, base_port=base, heap=os.environ.get("DFDG_BROKER_HEAP", "384m"))
