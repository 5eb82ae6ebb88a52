"""Fixtures for the fault tests: chains of services to break, the native stack, figures.

Integration-level tests start their own services on free ports with an OTLP receiver
inside the test (never 8000-8002, so a running stack is left alone). Tests marked
``e2e`` use the native stack: a running one is reused as it is, otherwise the session
starts it with ``deploy/stack.sh up`` and stops it again at the end.

Measured figures (latencies, rates, memory) are printed in a "fault figures" section
at the end of the run, so a green run still shows the numbers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from faulttools import RESTARTED, Chain, ChainFactory, Figures

from support.backends import JAEGER_URL, ZIPKIN_URL
from support.databases import Database
from support.otlp import OtlpReceiver
from tools.run import port_in_use

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "deploy" / "stack.sh"
STACK_GATEWAY = "http://127.0.0.1:8000"

_FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """``figures("...")`` records a measured figure for the end-of-run summary."""

    def add(line: str) -> None:
        _FIGURES.append(f"{request.node.name}: {line}")
        print(line)

    return add


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("fault figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


def _leave_nothing(chains: list[Chain]) -> None:
    for chain in chains:
        chain.stop()
    busy = [s.port for chain in chains for s in chain.services.values() if port_in_use(s.port)]
    assert busy == [], f"ports still listening after stop: {busy}"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A fresh OTLP receiver for one test (it may stop and restart it)."""
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture
def make_chain(tmp_path: Path) -> Iterator[ChainFactory]:
    """``make_chain(endpoint, env, database=...)`` -> a started :class:`Chain`, stopped
    after the test."""
    chains: list[Chain] = []

    def make(
        otlp_endpoint: str,
        env: Mapping[str, str] | None = None,
        start: bool = True,
        database: Database | None = None,
    ) -> Chain:
        chain = Chain(tmp_path / f"chain{len(chains)}", otlp_endpoint, env, database)
        chains.append(chain)
        if start:
            chain.start()
        return chain

    yield make
    _leave_nothing(chains)


@pytest.fixture(scope="session")
def shared_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="session")
def shared_chain(
    shared_receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    """One healthy chain for the tests that only send requests (bad input, fuzz, data).

    Its timeouts are generous (db 10 s, users 15 s): these tests are about answers and
    stored data, and on a busy machine a burst of 100 creates can take users past its
    default 2 s wait for db, which turns a committed write into an ambiguous 504.
    The default timeouts are tested in test_service_faults.py.
    """
    chain = Chain(
        tmp_path_factory.mktemp("shared"),
        shared_receiver.endpoint,
        {"DB_TIMEOUT": "10", "USERS_TIMEOUT": "15"},
    )
    chain.start()
    try:
        yield chain
    finally:
        _leave_nothing([chain])


# -- the native stack (e2e) ---------------------------------------------------------


def _stack_up() -> bool:
    urls = (f"{STACK_GATEWAY}/health", f"{JAEGER_URL}/", f"{ZIPKIN_URL}/health")
    try:
        return all(httpx.get(url, timeout=2).status_code == 200 for url in urls)
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def native_stack() -> Iterator[Path]:
    """The native stack's ``.run`` directory; the stack is started here when not up."""
    env = {**os.environ, "STACK": "native"}
    if _stack_up():
        yield REPO / ".run"
        return
    try:
        subprocess.run([str(STACK), "up"], cwd=REPO, env=env, check=True, timeout=3600)
        yield REPO / ".run"
    finally:
        subprocess.run([str(STACK), "down"], cwd=REPO, env=env, check=True, timeout=300)
        RESTARTED.reap()
