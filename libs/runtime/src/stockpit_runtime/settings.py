"""Settings every service reads from its environment."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockpit_runtime.kafka_security import KafkaSecurity


class ServiceSettings(BaseSettings):
    """Shared settings; a service subclasses it to add its own (prefix `STOCKPIT_`).

    `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` are read without the prefix, as the test fixtures,
    the Makefile and docker-compose name them.
    """

    model_config = SettingsConfigDict(env_prefix="STOCKPIT_", extra="ignore")

    service_name: str = "stockpit"
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "STOCKPIT_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://stockpit:stockpit@127.0.0.1:15432/stockpit"),
        validation_alias=AliasChoices("DATABASE_URL", "STOCKPIT_DATABASE_URL"),
    )
    # STOCKPIT_KAFKA_SECURITY_PROTOCOL, _SASL_*, _SSL_* (see stockpit_runtime.kafka_security).
    kafka_security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    db_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    topic_prefix: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    # Replicas of each topic the services create, and how many must have a write before it is
    # acknowledged (acks=all): 1 and 1 on one local broker; 3 and 2 on a cluster.
    topic_replication_factor: int = Field(default=1, ge=1, le=32)
    topic_min_insync_replicas: int = Field(default=1, ge=1, le=32)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0, le=60)
    # The outbox relay (`stockpit-relay`): rows per round, and the poll that catches rows no
    # notification announced (it is woken by the staging transaction's NOTIFY otherwise).
    outbox_batch_size: int = Field(default=2000, ge=1, le=10_000)
    outbox_idle_poll_s: float = Field(default=5.0, gt=0, le=3600)
    # The relay's own HTTP port (health and metrics), beside the service's.
    relay_http_port: int = Field(default=8001, ge=0, le=65535)
    # Readiness fails when the oldest outbox row waited longer (the service's and the relay's),
    # or the relay failed this often in a row (the relay's).
    outbox_max_age_s: float = Field(default=60, gt=0)
    relay_max_failures: int = Field(default=3, ge=1)
    # OpenTelemetry tracing: "otlp" exports spans as the standard OTEL_* variables say
    # (OTEL_EXPORTER_OTLP_ENDPOINT, ...); "off" makes none (see stockpit_runtime.tracing).
    tracing: Literal["off", "otlp"] = "off"
    # Allocations between two young-generation garbage collections (Python's default is 700).
    gc_young_threshold: int = Field(default=20_000, ge=100, le=1_000_000)
    # HTTP API authentication (stockpit_runtime.auth): bearer JWT access tokens verified with an
    # identity provider's key set (auth_jwks_url) or one PEM public key (auth_public_key_file).
    # With neither the service refuses to start, unless STOCKPIT_AUTH=disabled is given.
    auth: Literal["enabled", "disabled"] = "enabled"
    auth_jwks_url: str = ""
    auth_public_key_file: str = ""
    auth_issuer: str = ""
    auth_audience: str = ""
    auth_leeway_s: float = Field(default=30, ge=0, le=300)
    auth_jwks_cache_s: float = Field(default=300, ge=1, le=86_400)
    # Request bodies larger than this are refused with 413 before they are read.
    http_max_body_bytes: int = Field(default=262_144, ge=1024, le=100_000_000)

    @model_validator(mode="after")
    def _insync_replicas_fit(self) -> ServiceSettings:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                "STOCKPIT_TOPIC_MIN_INSYNC_REPLICAS is above STOCKPIT_TOPIC_REPLICATION_FACTOR:"
                " no write to a topic could ever be acknowledged"
            )
        return self

    @property
    def schema_name(self) -> str:
        """The PostgreSQL schema this service owns (one schema per service)."""
        return self.db_schema or self.service_name

    def consumer_group(self, purpose: str = "main") -> str:
        return f"{self.topic_prefix}{self.service_name}.{purpose}"
