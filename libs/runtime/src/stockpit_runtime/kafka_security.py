"""How every Kafka client of the system authenticates and encrypts: one setting set, read once.

`STOCKPIT_KAFKA_SECURITY_PROTOCOL` is PLAINTEXT (default, the local broker), SSL, SASL_PLAINTEXT or
SASL_SSL; SASL takes `STOCKPIT_KAFKA_SASL_MECHANISM` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
`STOCKPIT_KAFKA_SASL_USERNAME` and `STOCKPIT_KAFKA_SASL_PASSWORD`; TLS takes
`STOCKPIT_KAFKA_SSL_CAFILE` (the broker's CA; the system trust store when unset) and, for mutual
TLS, `STOCKPIT_KAFKA_SSL_CERTFILE` / `STOCKPIT_KAFKA_SSL_KEYFILE`.

Producers, admin clients, consumers and the outbox relay take `client_options()` (aiokafka
keyword arguments); FastStream's broker takes `faststream_security()`. Both come from the same
object, so no client can be left on another protocol.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_FASTSTREAM_SASL: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


class KafkaSecurity(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOCKPIT_KAFKA_", extra="ignore", frozen=True)

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.uses_sasl and not (self.sasl_username and self.sasl_password.get_secret_value()):
            raise ValueError(
                f"STOCKPIT_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "STOCKPIT_KAFKA_SASL_USERNAME and STOCKPIT_KAFKA_SASL_PASSWORD"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError(
                "STOCKPIT_KAFKA_SSL_CERTFILE and STOCKPIT_KAFKA_SSL_KEYFILE go together"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"STOCKPIT_KAFKA_{name.upper()}={path} is not a readable file")
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """Server certificate and host name verified (the default context's rules)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        return options

    def faststream_security(self) -> BaseSecurity | None:
        """The same settings as FastStream's `security=` object (None: plaintext)."""
        context = self.ssl_context()
        if self.uses_sasl:
            return _FASTSTREAM_SASL[self.sasl_mechanism](
                self.sasl_username,
                self.sasl_password.get_secret_value(),
                ssl_context=context,
                use_ssl=self.uses_tls,
            )
        if self.uses_tls:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        return None

    def environment(self) -> dict[str, str]:
        """The settings as environment variables, for a child process (secrets in clear)."""
        values = {
            "STOCKPIT_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "STOCKPIT_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "STOCKPIT_KAFKA_SASL_USERNAME": self.sasl_username,
            "STOCKPIT_KAFKA_SASL_PASSWORD": self.sasl_password.get_secret_value(),
        }
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            values[f"STOCKPIT_KAFKA_{name.upper()}"] = str(path) if path is not None else ""
        return values


def kafka_options(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments of `security`, or of the environment's settings."""
    return (security if security is not None else KafkaSecurity()).client_options()
