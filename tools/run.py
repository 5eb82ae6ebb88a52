"""``python -m tools.run`` (``make run``): the three services in the foreground.

Starts db, users and gateway on loopback, waits until each answers ``/health``,
prints where they are, and stops all three on Ctrl-C (or when one of them dies),
leaving no process behind. The test suite starts the services through the same
:class:`ServiceGroup`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tools.topology import topology


@dataclass(frozen=True, slots=True)
class Service:
    """One service process: its module, port and the environment it adds.

    ``python`` runs ``python -m <module>``: by default this interpreter, whose
    environment has every service of the workspace installed.
    """

    name: str
    module: str
    port: int
    env: Mapping[str, str]
    python: str = sys.executable

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


#: What every service is started with unless the environment says otherwise: the SDK's
#: own batch-processor metrics, behind the queue counters of ``/health``.
SERVICE_ENV = {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}


def chain(
    gateway_port: int | None = None, users_port: int | None = None, db_port: int | None = None
) -> list[Service]:
    """The three services wired to each other on loopback, downstream first; on the native
    stack's ports (deploy/.env) unless given others."""
    stack = topology()
    db_port = db_port or stack.db_port
    users_port = users_port or stack.users_port
    return [
        Service("db", "db", db_port, {}),
        Service("users", "users", users_port, {
            "DB_SERVICE_URL": f"http://127.0.0.1:{db_port}",
            "DB_SERVICE_NAME": stack.db_service,
        }),
        Service("gateway", "gateway", gateway_port or stack.gateway_port, {
            "USERS_SERVICE_URL": f"http://127.0.0.1:{users_port}",
            "USERS_SERVICE_NAME": stack.users_service,
        }),
    ]  # fmt: skip


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``.

    Cello binds with ``SO_REUSEPORT``, so a second server on a busy port starts
    without error and silently takes part of the traffic. Probing with a connect,
    not a bind, is what catches that.
    """
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class ServiceGroup:
    """Start, health-check and stop a set of service processes together."""

    def __init__(
        self,
        services: Sequence[Service],
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.services = list(services)
        self._env = {**SERVICE_ENV, **os.environ, "HOST": "127.0.0.1", **(env or {})}
        self._log_dir = log_dir
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, timeout: float = 30.0) -> None:
        """Start every service and wait until each answers ``GET /health``."""
        busy = [f"{s.name} ({s.port})" for s in self.services if port_in_use(s.port)]
        if busy:
            raise RuntimeError(
                f"ports already in use: {', '.join(busy)}; stop the old processes first "
                "(make down, or find them with: ss -ltnp)"
            )
        deadline = time.monotonic() + timeout
        # Downstream first, each healthy before the next starts (as compose's
        # depends_on: service_healthy): a service opens its connection to the next
        # one at start-up, so that one must be answering by then.
        for service in self.services:
            env = {**self._env, "PORT": str(service.port), **service.env}
            output: IO[bytes] | None = None
            if self._log_dir is not None:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                output = open(self._log_dir / f"{service.name}.log", "ab")  # noqa: SIM115
                self._logs.append(output)
            self._processes[service.name] = subprocess.Popen(
                [service.python, "-m", service.module],
                env=env,
                stdout=output if output is not None else subprocess.DEVNULL,
                stderr=output,
            )
            self._wait_healthy(service, deadline)

    def _wait_healthy(self, service: Service, deadline: float) -> None:
        process = self._processes[service.name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{service.name} exited with status {process.returncode}")
            try:
                with urllib.request.urlopen(f"{service.url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{service.name} did not become healthy on port {service.port}")

    def wait(self) -> str:
        """Block until one service exits; return its name."""
        while True:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    return name
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every service (upstream first), then SIGKILL what is left."""
        for process in reversed(self._processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self._processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def try_it(gateway_url: str) -> str:
    """A first request to send, as a shell command."""
    return (
        f"curl -i -X POST {gateway_url}/api/users -H 'content-type: application/json' "
        """-d '{"name": "Ada", "email": "ada@example.com"}'"""
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    services = chain()
    group = ServiceGroup(services)
    # Ctrl-C reaches the whole foreground process group; the children flush their
    # spans and exit on it by themselves, and stop() collects them.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        group.start()
        # The library's default when the shell sets none (cello_telemetry's config reads it).
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
        db, users, gateway = services
        print(f"gateway {gateway.url} -> users :{users.port} -> db :{db.port}, "
              f"telemetry to {endpoint}")  # fmt: skip
        print(f"try: {try_it(gateway.url)}")
        print("Ctrl-C stops all three.", flush=True)
        stopped = group.wait()
        print(f"{stopped} exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        group.stop()


if __name__ == "__main__":
    sys.exit(main())
