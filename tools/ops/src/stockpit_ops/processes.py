"""Starting the system's processes (services, their relays, sandbox) and waiting until they are
ready.

Used by the demo, the end-to-end tests and the benchmarks, so all three run the services
exactly as an operator would: separate processes configured through the environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_ready(url: str, timeout_s: float = 120) -> None:
    """Poll `url` until it answers 200 (a refused connection counts as "not yet"); a liveness
    bound for asyncio callers (the benchmarks), not a speed check."""
    async with asyncio.timeout(timeout_s), httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


@dataclass
class ManagedProcess:
    """A child process with a log file and an HTTP readiness URL."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    ready_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout_s: float = 90) -> None:
        self.launch()
        self.wait_ready(timeout_s)

    def launch(self) -> None:
        """Start the process without waiting for it to be ready (see `wait_ready`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own console scripts
                list(self.command),
                env={**os.environ, **self.env},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown hook runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def service_process(
    service: str, *, env: Mapping[str, str], log_dir: Path, port: int | None = None
) -> ManagedProcess:
    """One of `poller`, `inventory`, `outbound`, run through its console script."""
    port = port or free_port()
    executable = Path(sys.executable).with_name(f"stockpit-{service}")
    return ManagedProcess(
        name=service,
        command=[str(executable)],
        env={**env, "STOCKPIT_HTTP_PORT": str(port)},
        log_path=log_dir / f"{service}.log",
        ready_url=f"http://127.0.0.1:{port}/health/ready",
    )


def relay_process(
    service: str, *, env: Mapping[str, str], log_dir: Path, port: int | None = None
) -> ManagedProcess:
    """The outbox relay of `service` (`stockpit-relay`), with the service's environment: it
    publishes the outbox of the schema that environment names (`STOCKPIT_DB_SCHEMA`, else the
    service's own name)."""
    port = port or free_port()
    executable = Path(sys.executable).with_name("stockpit-relay")
    schema = env.get("STOCKPIT_DB_SCHEMA") or service
    return ManagedProcess(
        name=f"{service}-relay",
        command=[str(executable), "--schema", schema, "--port", str(port)],
        env=env,
        log_path=log_dir / f"{service}-relay.log",
        ready_url=f"http://127.0.0.1:{port}/health/ready",
    )
