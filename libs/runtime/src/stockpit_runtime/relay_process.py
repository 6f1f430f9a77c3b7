"""The outbox relay in a process of its own, beside the service that stages the rows.

A service's event loop is single-threaded Python; the relay's share of it (reading rows back,
building Kafka record batches, waiting for acknowledgements, deleting rows) was about a tenth of
the inventory's CPU while it applied documents. In a child process it runs on another core.

- The service starts the child (`RelayProcess.start`) and sends it its settings as the first
  line on its stdin (the database URL stays out of the command line).
- Every later byte on stdin wakes the relay: the service writes one after each commit that
  staged rows, unless bytes are already waiting.
- The child reports what it does as lines on a pipe of its own (`published <count>`,
  `set_aside <count>`, `failed <error>`, `ok` after a failure), which the service turns into its
  metrics and readiness (`RelayHealth`); its logs go to the service's stdout.
- The child exits when its stdin closes: when the service stops, and when it dies (even by
  SIGKILL), so a relay never outlives its service. The service restarts a child that exits on
  its own. Either way a PostgreSQL advisory lock keeps a single relay per schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from typing import TextIO

from pydantic import BaseModel, SecretStr

from stockpit_runtime.db import create_engine
from stockpit_runtime.kafka import reliable_producer
from stockpit_runtime.kafka_security import KafkaSecurity
from stockpit_runtime.logging import configure_logging, get_logger
from stockpit_runtime.outbox import OutboxRelay, RelayHealth
from stockpit_runtime.settings import ServiceSettings

log = get_logger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 15.0


class RelayConfig(BaseModel):
    """What the child needs, sent as JSON on the first line of its stdin."""

    service_name: str
    log_level: str
    database_url: SecretStr
    schema_name: str
    kafka_bootstrap_servers: str
    kafka_security: KafkaSecurity
    batch_size: int
    idle_poll_s: float
    report_fd: int = -1

    @classmethod
    def of(cls, settings: ServiceSettings) -> RelayConfig:
        return cls(
            service_name=settings.service_name,
            log_level=settings.log_level,
            database_url=settings.database_url,
            schema_name=settings.schema_name,
            kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
            kafka_security=settings.kafka_security,
            batch_size=settings.outbox_batch_size,
            idle_poll_s=settings.outbox_idle_poll_s,
        )

    def line(self, report_fd: int) -> bytes:
        """The config as one JSON line, with the database URL and Kafka password in clear: it
        goes to the child's stdin, never to its command line."""
        data = self.model_dump(mode="json")
        data["database_url"] = self.database_url.get_secret_value()
        data["kafka_security"]["sasl_password"] = (
            self.kafka_security.sasl_password.get_secret_value()
        )
        data["report_fd"] = report_fd
        return json.dumps(data).encode() + b"\n"


class RelayProcess:
    """The service's side: starts, wakes, watches and stops the child."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._config = RelayConfig.of(settings)
        self._schema = settings.schema_name
        self.health = RelayHealth(settings.schema_name)
        self._process: asyncio.subprocess.Process | None = None
        self._reports: asyncio.StreamReader | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._spawn()
        self._watch = asyncio.create_task(self._keep_running(), name=f"relay-{self._schema}")

    def wake(self) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        # Bytes still waiting in the pipe will wake it anyway.
        if process.stdin.transport.get_write_buffer_size() == 0:
            process.stdin.write(b"\n")

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            log.warning("outbox relay process did not stop; killing it", pid=process.pid)
            process.kill()
            await process.wait()

    async def _spawn(self) -> None:
        # Reports come back on a pipe of their own: the child's stdout carries its logs.
        report_read, report_write = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(report_write,),
            )
        finally:
            os.close(report_write)
        reports = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reports), os.fdopen(report_read, "rb")
        )
        assert process.stdin is not None
        process.stdin.write(self._config.line(report_write))
        self._process, self._reports = process, reports
        log.info("outbox relay process started", pid=process.pid, schema=self._schema)

    async def _keep_running(self) -> None:
        while not self._stopping:
            process, reports = self._process, self._reports
            assert process is not None
            assert reports is not None
            while line := await reports.readline():
                match line.rstrip(b"\n").split(b" ", 1):
                    case [b"published", count]:
                        self.health.published(int(count))
                    case [b"set_aside", count]:
                        self.health.set_aside(int(count))
                    case [b"failed", error]:
                        self.health.failed(error.decode(errors="replace"))
                    case [b"ok"]:
                        self.health.succeeded()
                    case _:
                        log.warning("outbox relay process said something odd", line=line[:200])
            code = await process.wait()
            if self._stopping:
                return
            log.error("outbox relay process exited; restarting it", code=code, pid=process.pid)
            self.health.failed(f"the relay process exited with code {code}")
            await asyncio.sleep(RESTART_DELAY_S)
            await self._spawn()


class PipeReport(RelayHealth):
    """The child's side of `RelayHealth`: each fact becomes a line for the service."""

    def __init__(self, schema: str, pipe: TextIO) -> None:
        super().__init__(schema)
        self._pipe = pipe

    def published(self, count: int) -> None:
        self._pipe.write(f"published {count}\n")

    def set_aside(self, count: int) -> None:
        self._pipe.write(f"set_aside {count}\n")

    def failed(self, error: str) -> None:
        self.consecutive_failures += 1
        self._pipe.write(f"failed {' '.join(error.split())}\n")

    def succeeded(self) -> None:
        # Said only after a failure: a line per idle poll would be noise.
        if self.consecutive_failures:
            self.consecutive_failures = 0
            self._pipe.write("ok\n")


async def _run_child() -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    config = RelayConfig.model_validate_json(await stdin.readline())
    configure_logging(f"{config.service_name}.relay", config.log_level)
    engine = create_engine(config.database_url.get_secret_value(), config.schema_name, pool_size=2)
    producer = reliable_producer(
        config.kafka_bootstrap_servers, f"{config.service_name}-relay", config.kafka_security
    )

    relay = OutboxRelay(
        engine,
        producer,
        config.schema_name,
        batch_size=config.batch_size,
        idle_poll_s=config.idle_poll_s,
        health=PipeReport(config.schema_name, os.fdopen(config.report_fd, "w", buffering=1)),
    )
    try:
        await producer.start()
        relay.start()
        # Wake-ups until the service closes the pipe (or dies).
        while await stdin.read(4096):
            relay.wake()
    finally:
        await relay.stop()
        await producer.stop()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(_run_child())
