"""How every Kafka client of dfdg authenticates: one place, read from the environment.

``KAFKA_SECURITY_PROTOCOL`` is ``PLAINTEXT`` (default, the local dev broker), ``SASL_PLAINTEXT``
or ``SASL_SSL``. With SASL the client logs in as ``KAFKA_SASL_USERNAME`` with the password in
``KAFKA_SASL_PASSWORD`` or, better, in the file named by ``KAFKA_SASL_PASSWORD_FILE`` (a
mounted secret); the mechanism is ``KAFKA_SASL_MECHANISM`` (default ``SCRAM-SHA-512``). For
``SASL_SSL`` the broker's CA is ``KAFKA_SSL_CAFILE`` (else the system trust store).

The password is never logged: ``describe()`` is what a log line may say about the config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PROTOCOLS",
    "KafkaAuthError",
    "client_config",
    "describe",
    "faust_credentials",
    "java_client_properties",
]

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class KafkaAuthError(RuntimeError):
    """The Kafka security settings are incomplete or wrong; the message names the variable."""


def _password(env: Mapping[str, str]) -> str:
    if value := env.get("KAFKA_SASL_PASSWORD"):
        return value
    if path := env.get("KAFKA_SASL_PASSWORD_FILE"):
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KafkaAuthError(f"KAFKA_SASL_PASSWORD_FILE cannot be read: {exc.strerror}") from exc
    raise KafkaAuthError("SASL needs a password: set KAFKA_SASL_PASSWORD_FILE (or KAFKA_SASL_PASSWORD)")


def _settings(env: Mapping[str, str]) -> tuple[str, str, str, str] | None:
    """(protocol, mechanism, username, password), or None for PLAINTEXT."""
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise KafkaAuthError(f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {PROTOCOLS}")
    if protocol == "PLAINTEXT":
        return None
    mechanism = env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").strip().upper()
    if mechanism not in _MECHANISMS:
        raise KafkaAuthError(f"KAFKA_SASL_MECHANISM={mechanism!r} is not one of {_MECHANISMS}")
    username = env.get("KAFKA_SASL_USERNAME", "").strip()
    if not username:
        raise KafkaAuthError("SASL needs a user name: set KAFKA_SASL_USERNAME")
    return protocol, mechanism, username, _password(env)


def _ssl_context(env: Mapping[str, str]) -> Any:
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=env.get("KAFKA_SSL_CAFILE") or None)


def client_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin): ``**client_config()``."""
    env = os.environ if env is None else env
    settings = _settings(env)
    if settings is None:
        return {"security_protocol": "PLAINTEXT"}
    protocol, mechanism, username, password = settings
    config: dict[str, Any] = {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }
    if protocol == "SASL_SSL":
        config["ssl_context"] = _ssl_context(env)
    return config


def faust_credentials(env: Mapping[str, str] | None = None) -> Any:
    """``faust.SASLCredentials`` for the app's ``broker_credentials``, or None for PLAINTEXT."""
    env = os.environ if env is None else env
    settings = _settings(env)
    if settings is None:
        return None
    import faust

    protocol, mechanism, username, password = settings
    ssl_context = _ssl_context(env) if protocol == "SASL_SSL" else None
    return faust.SASLCredentials(username=username, password=password, mechanism=mechanism,
                                 ssl_context=ssl_context)


def java_client_properties(config: Mapping[str, Any]) -> str:
    """The same login as a Java client ``.properties`` text (for Kafka's own tools).

    The result holds the password: write it only to a 0600 file and delete it after use.
    """
    protocol = str(config.get("security_protocol", "PLAINTEXT"))
    lines = [f"security.protocol={protocol}"]
    if protocol.startswith("SASL_"):
        mechanism = str(config["sasl_mechanism"])
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        user = _jaas_quote(str(config["sasl_plain_username"]))
        password = _jaas_quote(str(config["sasl_plain_password"]))
        lines += [f"sasl.mechanism={mechanism}",
                  f'sasl.jaas.config={module} required username="{user}" password="{password}";']
    return "\n".join(lines) + "\n"


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def describe(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What may be logged about the Kafka login: protocol, mechanism, user; never the password."""
    env = os.environ if env is None else env
    settings = _settings(env)
    if settings is None:
        return {"security_protocol": "PLAINTEXT"}
    protocol, mechanism, username, _ = settings
    return {"security_protocol": protocol, "sasl_mechanism": mechanism, "sasl_username": username}
