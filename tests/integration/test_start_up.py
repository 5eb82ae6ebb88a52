"""A service that cannot start says why in one line and exits with status 2: a taken
port (Cello itself would share it silently) or a malformed ``DATABASE_URL``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.traces import poll_until
from tools.ports import free_ports

SECRET_TAIL = "w0rd-tail"


def _env(port: int, **extra: str) -> dict[str, str]:
    # No telemetry: these tests are about the process, not its spans.
    return {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "OTEL_SDK_DISABLED": "true",
        "USERS_SERVICE_URL": "http://127.0.0.1:9",
        **extra,
    }


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A gateway on a free port (its users service is absent: /health still answers)."""
    (port,) = free_ports(1)
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=_env(port), stdout=log, stderr=log
        )
    try:
        poll_until(
            lambda: _health(port),
            lambda ok: ok or first.poll() is not None,
            timeout=60,
            what="the first gateway's /health",
        )
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        yield port, first
    finally:
        first.terminate()
        first.wait(10)


def _health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_process_on_a_taken_port_exits_and_the_first_keeps_every_request(
    gateway: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, first = gateway
    second = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=_env(port),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stderr
    assert second.stderr == (
        f"cannot listen on 127.0.0.1:{port}: the port is already in use by another process\n"
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(40):  # a new connection each time: SO_REUSEPORT spreads those
            answer = client.get("/health", headers={"connection": "close"})
            assert answer.status_code == 200
    assert first.poll() is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql+asyncpg://cello:p@ss@{SECRET_TAIL}@127.0.0.1:1/users", "%40"),
        (f"postgresql+asyncpg://cello:{SECRET_TAIL}@127.0.0.1:port/users", "port must be"),
    ],
    ids=["@ in password", "non-numeric port"],
)
def test_db_with_a_malformed_url_exits_in_one_line_without_the_password(
    url: str, says: str
) -> None:
    (port,) = free_ports(1)
    done = subprocess.run(
        [sys.executable, "-m", "db"],
        env=_env(port, DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("configuration error: DATABASE_URL (postgresql+asyncpg://...)")
    assert says in line
    assert SECRET_TAIL not in done.stderr + done.stdout


def test_an_unknown_log_level_exits_in_one_line_naming_it() -> None:
    (port,) = free_ports(1)
    done = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=_env(port, LOG_LEVEL="loud"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("configuration error: LOG_LEVEL='LOUD'")
