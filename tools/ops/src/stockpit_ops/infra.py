"""A private Kafka broker and PostgreSQL server, for drills that stop and restart them.

They run through `infra/kafka.sh` and `infra/postgres.sh` (the very scripts `make infra-up`
uses) on free ports and in their own folders, so the shared servers other tests use are never
touched. `private_infra()` always stops both, even when the drill failed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stockpit_runtime.kafka_security import KafkaSecurity, SaslMechanism

from stockpit_ops.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[4]
INFRA = REPO_ROOT / "infra"
# The jars the shared broker was started with; a private broker reuses them instead of fetching.
SHARED_KAFKA_LIBS = REPO_ROOT / ".local" / "kafka" / "libs"
PORT_TAKEN = "is taken by another process"  # what infra/*.sh say before starting anything
PORT_ATTEMPTS = 5


@dataclass
class InfraServer:
    """One server run by an infra script with its own environment (ports and folders)."""

    script: Path
    env: Mapping[str, str]

    def _run(self, command: str, timeout_s: float = 180) -> None:
        completed = subprocess.run(  # noqa: S603 - our own infra scripts
            [str(self.script), command],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"{self.script.name} {command} failed ({completed.returncode}):\n"
                f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
            )

    def start(self) -> None:
        self._run("start")

    def start_on_free_ports(self, pick_ports: Callable[[], Mapping[str, str]]) -> None:
        """Start on ports from `pick_ports`. A port seen free may be taken by another process
        (another test's connection) before the server binds it: then pick again."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.env = {**self.env, **pick_ports()}
            try:
                self.start()
                return
            except RuntimeError as exc:
                if PORT_TAKEN not in str(exc) or attempt == PORT_ATTEMPTS:
                    raise

    def stop(self) -> None:
        self._run("stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class PrivateInfra:
    kafka: InfraServer
    postgres: InfraServer

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka.env['KAFKA_PORT']}"

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://stockpit:stockpit@127.0.0.1:{self.postgres.env['PG_PORT']}/stockpit"


@contextmanager
def private_infra(base_dir: Path | None = None) -> Iterator[PrivateInfra]:
    """Start a Kafka broker and a PostgreSQL server of our own; stop both afterwards."""
    # PostgreSQL runs as the `postgres` user when we are root: its folder must be reachable.
    base = Path(tempfile.mkdtemp(prefix="stockpit-private-", dir=base_dir))
    base.chmod(0o755)
    kafka_env = {"KAFKA_DIR": str(base / "kafka"), "KAFKA_HEAP": "384m"}
    if SHARED_KAFKA_LIBS.is_dir():
        kafka_env["KAFKA_LIBS_DIR"] = str(SHARED_KAFKA_LIBS)
    elif os.environ.get("KAFKA_LIBS_DIR"):
        kafka_env["KAFKA_LIBS_DIR"] = os.environ["KAFKA_LIBS_DIR"]
    infra = PrivateInfra(
        kafka=InfraServer(INFRA / "kafka.sh", kafka_env),
        postgres=InfraServer(INFRA / "postgres.sh", {"PG_DIR": str(base / "pg")}),
    )
    try:
        infra.postgres.start_on_free_ports(lambda: {"PG_PORT": str(free_port())})
        infra.kafka.start_on_free_ports(
            lambda: {"KAFKA_PORT": str(free_port()), "KAFKA_CONTROLLER_PORT": str(free_port())}
        )
        yield infra
    finally:
        failures: list[str] = []
        for server in (infra.kafka, infra.postgres):
            try:
                server.stop()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))  # the other one still has to stop
        if failures:
            raise RuntimeError("could not stop the private servers: " + "; ".join(failures))
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class PrivateSecureKafka:
    """A private broker with a SASL_SSL listener (and a PLAINTEXT one, for its own tools)."""

    server: InfraServer
    username: str
    password: str

    @property
    def bootstrap_servers(self) -> str:
        """The SASL_SSL listener."""
        return f"127.0.0.1:{self.server.env['KAFKA_SASL_SSL_PORT']}"

    @property
    def ca_file(self) -> Path:
        return Path(self.server.env["KAFKA_DIR"]) / "tls" / "ca.pem"

    def security(
        self, *, password: str | None = None, mechanism: SaslMechanism = "SCRAM-SHA-512"
    ) -> KafkaSecurity:
        return KafkaSecurity.model_validate(
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": mechanism,
                "sasl_username": self.username,
                "sasl_password": self.password if password is None else password,
                "ssl_cafile": self.ca_file,
            }
        )


@contextmanager
def private_secure_kafka(base_dir: Path | None = None) -> Iterator[PrivateSecureKafka]:
    """Start a broker of our own with a SASL_SSL listener (`infra/kafka.sh` with
    KAFKA_SASL_SSL_PORT) on free ports; stop it afterwards. The shared broker is never touched."""
    base = Path(tempfile.mkdtemp(prefix="stockpit-secure-kafka-", dir=base_dir))
    password = secrets.token_hex(16)
    env = {
        "KAFKA_DIR": str(base / "kafka"),
        "KAFKA_HEAP": "384m",
        "KAFKA_SASL_USERNAME": "stockpit",
        "KAFKA_SASL_PASSWORD": password,
    }
    if SHARED_KAFKA_LIBS.is_dir():
        env["KAFKA_LIBS_DIR"] = str(SHARED_KAFKA_LIBS)
    elif os.environ.get("KAFKA_LIBS_DIR"):
        env["KAFKA_LIBS_DIR"] = os.environ["KAFKA_LIBS_DIR"]
    server = InfraServer(INFRA / "kafka.sh", env)
    try:
        server.start_on_free_ports(
            lambda: {
                "KAFKA_PORT": str(free_port()),
                "KAFKA_CONTROLLER_PORT": str(free_port()),
                "KAFKA_SASL_SSL_PORT": str(free_port()),
            }
        )
        yield PrivateSecureKafka(server, "stockpit", password)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
