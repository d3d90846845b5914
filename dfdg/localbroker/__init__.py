"""The embedded default: one real Apache Kafka broker (KRaft, combined broker+controller)
run as a local Java process from jars Maven resolves. No Docker needed."""

from dfdg.localbroker.manager import BrokerError, LocalBroker, broker_from_env

__all__ = ["BrokerError", "LocalBroker", "broker_from_env"]
