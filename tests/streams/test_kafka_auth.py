"""Kafka client login settings from the environment (issue 8)."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from streams.kafka_auth import KafkaAuthError, client_config, describe, faust_credentials, java_client_properties


def test_plaintext_is_the_default() -> None:
    assert client_config({}) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials({}) is None


def test_sasl_from_env_and_password_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pw\n")
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "dfdg-worker",
           "KAFKA_SASL_PASSWORD_FILE": str(pw)}
    assert client_config(env) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                  "sasl_plain_username": "dfdg-worker", "sasl_plain_password": "s3cret-pw"}
    creds = faust_credentials(env)
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.mechanism.value == "SCRAM-SHA-512" and creds.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(creds) and "s3cret-pw" not in str(describe(env))
    assert 'password="s3cret-pw"' in java_client_properties(client_config(env))


@pytest.mark.parametrize("env", [
    {"KAFKA_SECURITY_PROTOCOL": "SSLX"},
    {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_PASSWORD": "x"},
    {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"},
    {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "x",
     "KAFKA_SASL_MECHANISM": "MD5"},
])
def test_incomplete_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(KafkaAuthError):
        client_config(env)
