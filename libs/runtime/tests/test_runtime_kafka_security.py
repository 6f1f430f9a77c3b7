"""The Kafka security settings: one object gives aiokafka's and FastStream's settings alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from faststream.security import SASLScram256
from pydantic import SecretStr, ValidationError
from stockpit_runtime.kafka_security import KafkaSecurity
from stockpit_runtime.settings import ServiceSettings


def test_plaintext_by_default() -> None:
    security = KafkaSecurity()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.faststream_security() is None


def test_sasl_without_credentials_is_refused_with_what_to_set() -> None:
    with pytest.raises(ValidationError, match="STOCKPIT_KAFKA_SASL_USERNAME"):
        KafkaSecurity(security_protocol="SASL_SSL")


def test_a_missing_ca_file_is_named() -> None:
    with pytest.raises(ValidationError, match="is not a readable file"):
        KafkaSecurity(security_protocol="SSL", ssl_cafile=Path("/nonexistent/ca.pem"))


def test_aiokafka_and_faststream_get_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPIT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STOCKPIT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("STOCKPIT_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("STOCKPIT_KAFKA_SASL_PASSWORD", "pw-123")
    security = ServiceSettings().kafka_security
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_password"] == "pw-123"
    assert options["ssl_context"] is not None
    faststream = security.faststream_security()
    assert isinstance(faststream, SASLScram256)
    parsed = parse_security(faststream)
    assert {k: parsed[k] for k in ("security_protocol", "sasl_mechanism")} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
    }
    assert "pw-123" not in repr(security)
    assert KafkaSecurity(**{**security.model_dump(), "sasl_password": SecretStr("pw-123")}) == (
        security
    )
