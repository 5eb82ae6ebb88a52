"""Tools for the fault tests: a chain of services that can be broken one process at a
time, and the measurements the tests assert on (sockets, memory, latency, logs).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from support.databases import Database, sqlite_database
from support.traces import poll_until
from tools.ports import free_ports
from tools.run import SERVICE_ENV, Service, chain, port_in_use

#: Long scenarios (the 60 s soak, the Zipkin restart) run only when this is set, as
#: ``make test-faults`` does; in the default run each fault test takes seconds.
LONG = os.environ.get("CELLO_FAULTS_LONG", "") == "1"
long_only = pytest.mark.skipif(not LONG, reason="long; runs with make test-faults")

#: ``figures("...")`` records a measured figure for the end-of-run summary.
Figures = Callable[[str], None]

#: A ``traceparent`` as the services must always answer with one.
# Flags: sampled (0x01) and, on a trace this service started, random trace id (0x02).
TRACEPARENT_RE = r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-0[0-3]"


class Restarted:
    """Stack components a test started again: children of the test process.

    Held for the whole session (a ``Popen`` collected while its process runs is a
    ResourceWarning), and reaped once ``deploy/stack.sh down`` has stopped them.
    """

    def __init__(self) -> None:
        self._children: list[subprocess.Popen[bytes]] = []

    def add(self, child: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        self._children.append(child)
        return child

    def reap(self, timeout: float = 10) -> None:
        for child in self._children:
            child.wait(timeout)
        self._children.clear()


RESTARTED = Restarted()


ChainFactory = Callable[..., "Chain"]


class Chain:
    """gateway -> users -> db as three processes on free ports, each one on its own.

    Unlike :class:`tools.run.ServiceGroup`, one service can be killed, stopped
    (SIGSTOP), terminated or restarted while the others keep running, and its pid is
    at hand for ``/proc``. ``env`` is added to every service's environment; db keeps
    its users in ``database`` (default: a SQLite file in ``workdir``).
    """

    def __init__(
        self,
        workdir: Path,
        otlp_endpoint: str,
        env: Mapping[str, str] | None = None,
        database: Database | None = None,
    ):
        gateway, users, db = free_ports(3)
        self.services: dict[str, Service] = {s.name: s for s in chain(gateway, users, db)}
        self.workdir = workdir
        self.database = database or sqlite_database(workdir)
        self.env = {
            **SERVICE_ENV,  # what every deployment sets for the services (tools.run)
            **os.environ,
            "HOST": "127.0.0.1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "DATABASE_URL": self.database.url,
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        (workdir / "logs").mkdir(parents=True, exist_ok=True)

    # -- where things are ------------------------------------------------------

    def url(self, name: str = "gateway") -> str:
        return self.services[name].url

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # -- starting and stopping -------------------------------------------------

    def start(self, *names: str, timeout: float = 60) -> None:
        """Start ``names`` (default: all three, db first) and wait until each is healthy."""
        names = names or ("db", "users", "gateway")
        deadline = time.monotonic() + timeout
        # One after the other, each healthy before the next: a service opens its
        # connection to the next one at start-up (as tools.run does it).
        for name in names:
            service = self.services[name]
            if port_in_use(service.port):
                raise RuntimeError(f"port {service.port} for {name} is taken")
            log = open(self.log_path(name), "ab")  # noqa: SIM115 - closed in _reap
            self._logs[name] = log
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", service.module],
                env={**self.env, "PORT": str(service.port), **service.env},
                stdout=log,
                stderr=log,
            )
            self._wait_healthy(name, deadline)

    def _wait_healthy(self, name: str, deadline: float) -> None:
        process = self.processes[name]

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            return httpx.get(f"{self.url(name)}/health", timeout=1).status_code == 200

        poll_until(
            healthy,
            bool,
            timeout=max(0.1, deadline - time.monotonic()),
            interval=0.1,
            what=f"{name} healthy",
        )

    def signal(self, name: str, signum: signal.Signals) -> None:
        self.processes[name].send_signal(signum)

    def kill(self, name: str) -> None:
        """SIGKILL ``name``: no shutdown hook, no flush, as in a crash."""
        process = self.processes[name]
        process.kill()
        process.wait(10)
        self._reap(name)

    def terminate(self, name: str, timeout: float = 15) -> float:
        """SIGTERM ``name`` and wait for it to exit; the seconds it took."""
        process = self.processes[name]
        started = time.monotonic()
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout)
        took = time.monotonic() - started
        self._reap(name)
        return took

    def wait_exit(self, name: str, timeout: float) -> int:
        """Wait for ``name`` to exit by itself (after a signal sent earlier); its status."""
        status = self.processes[name].wait(timeout)
        self._reap(name)
        return status

    def restart(self, name: str) -> None:
        """Kill ``name`` (if it runs) and start it again with the same settings."""
        if name in self.processes:
            self.kill(name)
        self.start(name)

    def stop(self) -> None:
        """Stop everything, upstream first; SIGKILL what does not exit in 10 s."""
        for name in ("gateway", "users", "db"):
            process = self.processes.get(name)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._reap(name)

    def _reap(self, name: str) -> None:
        self.processes.pop(name, None)
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    # -- what the services say -------------------------------------------------

    def health(self, name: str = "gateway") -> dict[str, Any]:
        answer = httpx.get(f"{self.url(name)}/health", timeout=5)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def span_stats(self, name: str = "gateway") -> dict[str, int]:
        """The ``telemetry.spans`` counters of ``GET /health``."""
        stats: dict[str, int] = self.health(name)["telemetry"]["spans"]
        return stats

    def log_lines(self, name: str) -> list[str]:
        """The log file's lines after Cello's start-up banner (the JSON log)."""
        text = self.log_path(name).read_bytes().decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.startswith("{")]

    def log_records(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_lines(name)]


# -- measurements ----------------------------------------------------------------


def open_sockets(pid: int) -> int:
    """How many sockets process ``pid`` has open (from ``/proc/<pid>/fd``)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except FileNotFoundError:  # closed while we looked
            pass
    return count


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def timed_gets(client: httpx.Client, url: str, count: int) -> list[float]:
    """Send ``count`` sequential GETs; each one's latency in ms (all must be 200)."""
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(url)
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def raw_request(
    port: int, head: bytes, body: bytes = b"", timeout: float = 10
) -> tuple[int, bytes]:
    """Send bytes exactly as given (``head`` without the final blank line) over a raw socket.

    httpx refuses CR or LF in a header value; a hostile client does not. Returns the
    status code and the raw response head.
    """
    request = head.rstrip(b"\r\n") + b"\r\nConnection: close\r\n"
    if body:
        request += b"Content-Length: %d\r\n" % len(body)
    request += b"\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head_bytes = response.split(b"\r\n\r\n", 1)[0]
    status = int(head_bytes.split(b" ", 2)[1])
    return status, head_bytes


def header_lines(head: bytes) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of each header line in a raw response head."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        yield name.decode("latin-1").strip().lower(), value.decode("latin-1").strip()


def connections_to(port: int) -> int:
    """Established TCP connections to ``127.0.0.1:port`` (client side), machine-wide."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01":  # 01: ESTABLISHED
                count += 1
    return count


def process_connections_to(pid: int, port: int) -> int:
    """Open TCP connections of process ``pid`` to ``127.0.0.1:port`` (from ``/proc``)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        # state 01 is ESTABLISHED; field 9 is the socket's inode
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count
