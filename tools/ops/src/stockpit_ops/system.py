"""The whole system as separate processes: the Pennylane sandbox, the three services and the
outbox relay of each (`stockpit-relay`, with its service's environment).

The demo, the end-to-end tests and the system benchmark all run it this way, so what they show
is what an operator runs: console scripts configured through the environment, talking over
Kafka, PostgreSQL and HTTP only. The services trust the run's local identity provider
(`LocalAuthority`: an Ed25519 key pair, `.local/auth` for the demo, the test's directory
otherwise) and `probes.http` calls them with an operator's token minted from it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import sys
import uuid
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_runtime.auth import LocalAuthority
from stockpit_runtime.kafka import delete_topics

from stockpit_ops import probes
from stockpit_ops.db_roles import RolePlan, bootstrap_roles, drop_roles
from stockpit_ops.processes import ManagedProcess, free_port, relay_process, service_process

SERVICES = ("inventory", "outbound", "poller")
TOKEN_READERS = ("outbound", "poller")


@dataclass
class SystemConfig:
    """One isolated run: its own topic prefix, schemas and sandbox companies."""

    kafka_bootstrap_servers: str
    database_url: str
    log_dir: Path
    tokens: Sequence[str] = ("demo-token",)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    sandbox_args: Sequence[str] = ()
    token_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    # Settings every service gets on top of the defaults (e.g. STOCKPIT_CONSUMER_MAX_ATTEMPTS).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Delete the run's topics and schemas afterwards: a shared broker's heap grows with every
    # partition ever created, and runs are many.
    remove_data_afterwards: bool = True
    # Where the run's token-signing key pair is (made there if missing); default: log_dir/auth.
    auth_dir: Path | None = None
    # Each service connects with a PostgreSQL role of its own owning only its schema (made
    # first with `database_url`, the administrator's); False: every service uses database_url.
    least_privilege: bool = True
    role_passwords: Mapping[str, str] = field(
        default_factory=lambda: {service: secrets.token_hex(16) for service in SERVICES}
    )

    @property
    def authority(self) -> LocalAuthority:
        return LocalAuthority.create(self.auth_dir or self.log_dir / "auth")

    @property
    def topic_prefix(self) -> str:
        return f"run{self.run_id}."

    def schema(self, owner: str) -> str:
        """The run's schema of a service (or of the shared connections registry)."""
        return f"{owner}_{self.run_id}"

    @property
    def schemas(self) -> list[str]:
        return [self.schema(owner) for owner in (*SERVICES, "connections")]

    @property
    def roles(self) -> RolePlan:
        """The run's roles: one per service, named after the run (roles are server-wide)."""
        return RolePlan(
            passwords=self.role_passwords,
            schemas={owner: self.schema(owner) for owner in (*SERVICES, "connections")},
            roles={service: f"stockpit_{service}_{self.run_id}" for service in SERVICES},
        )

    def database_url_of(self, service: str) -> str:
        if not self.least_privilege:
            return self.database_url
        return self.roles.database_url(self.database_url, service)

    def service_env(self, service: str, sandbox_url: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "DATABASE_URL": self.database_url_of(service),
            "STOCKPIT_TOPIC_PREFIX": self.topic_prefix,
            "STOCKPIT_DB_SCHEMA": self.schema(service),
            "STOCKPIT_CONNECTIONS_SCHEMA": self.schema("connections"),
            # Only the services that decrypt tokens get the key.
            **({"STOCKPIT_TOKEN_KEY": self.token_key} if service in TOKEN_READERS else {}),
            "STOCKPIT_PENNYLANE_BASE_URL": f"{sandbox_url}/api/external/v2",
            "STOCKPIT_LOG_LEVEL": "INFO",
            **self.authority.service_env(),
            **self.extra_env,
        }


@dataclass
class RunningSystem:
    config: SystemConfig
    sandbox: ManagedProcess
    services: dict[str, ManagedProcess]
    # The outbox relay of each service, by service name.
    relays: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def sandbox_url(self) -> str:
        return self.sandbox.ready_url.removesuffix("/_sandbox/health")

    def url(self, service: str) -> str:
        return self.services[service].ready_url.removesuffix("/health/ready")

    def relay_url(self, service: str) -> str:
        """Where the relay of `service` answers (health and metrics)."""
        return self.relays[service].ready_url.removesuffix("/health/ready")

    def token(self, **claims: Any) -> str:
        """A token of the run's authority (default: an operator of every tenant, every scope;
        see `LocalAuthority.token`)."""
        return self.config.authority.token(**claims)

    def restart(self, service: str, *, kill: bool = True) -> None:
        process = self.services[service]
        if kill:
            process.kill()
        else:
            process.stop()
        process.start()

    def kill(self, service: str) -> None:
        """SIGKILL one service and leave it down (`start` brings it back); its relay goes on."""
        self.services[service].kill()

    def start(self, service: str) -> None:
        self.services[service].start()

    def stop(self) -> None:
        for process in (*self.services.values(), *self.relays.values(), self.sandbox):
            process.stop()


def sandbox_process(config: SystemConfig, port: int | None = None) -> ManagedProcess:
    port = port or free_port()
    executable = Path(sys.executable).with_name("pennylane-sandbox")
    return ManagedProcess(
        name="pennylane-sandbox",
        command=[
            str(executable),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tokens",
            ",".join(config.tokens),
            *config.sandbox_args,
        ],
        env={},
        log_path=config.log_dir / "pennylane-sandbox.log",
        ready_url=f"http://127.0.0.1:{port}/_sandbox/health",
    )


@contextmanager
def running_system(config: SystemConfig) -> Iterator[RunningSystem]:
    """Start the sandbox, inventory, outbound and poller side by side (each service creates
    the topics and migrates the schemas it uses, safely alongside the others, and reaches the
    sandbox only once a tenant is connected), and each service's relay once the service is
    ready (its outbox table exists then); stop them all afterwards."""
    sandbox = sandbox_process(config)
    services: dict[str, ManagedProcess] = {}
    system = RunningSystem(config, sandbox, services)
    relays = system.relays
    try:
        if config.least_privilege:
            _run_blocking(bootstrap_roles(config.database_url, config.roles))
        sandbox.launch()
        for service in SERVICES:
            services[service] = service_process(
                service,
                env=config.service_env(service, system.sandbox_url),
                log_dir=config.log_dir,
            )
            services[service].launch()
        for process in (sandbox, *services.values()):
            process.wait_ready(timeout_s=90)
        for service in SERVICES:
            # The service's settings, less the token key: a relay decrypts nothing.
            env = {k: v for k, v in services[service].env.items() if k != "STOCKPIT_TOKEN_KEY"}
            relays[service] = relay_process(service, env=env, log_dir=config.log_dir)
            relays[service].launch()
        for process in relays.values():
            process.wait_ready(timeout_s=90)
        operator = system.token(subject="stockpit-ops", lifetime=dt.timedelta(days=1))
        for service in SERVICES:
            probes.authorize(system.url(service), operator)
        yield system
    finally:
        for service in services:
            probes.forget(system.url(service))
        system.stop()
        if config.remove_data_afterwards:
            remove_run_data(config)


def _run_blocking(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to completion, also when called from a test's running event loop (then in a
    thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work).result()


def remove_run_data(config: SystemConfig) -> None:
    """Delete the run's topics and drop its schemas (a failure is reported, not raised: the
    run's own outcome matters more)."""
    try:
        _run_blocking(_remove_run_data(config))
    except Exception as exc:
        print(
            f"could not remove run {config.run_id}'s topics and schemas: {exc!r}", file=sys.stderr
        )


async def _remove_run_data(config: SystemConfig) -> None:
    await delete_topics(config.kafka_bootstrap_servers, config.topic_prefix)
    engine = create_async_engine(config.database_url)
    try:
        async with engine.begin() as connection:
            for schema in config.schemas:
                await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()
    if config.least_privilege:
        await drop_roles(config.database_url, config.roles)
