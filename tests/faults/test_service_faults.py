"""A downstream service dies or hangs: the gateway still answers, in time, with a
problem+json 503 or 504; the trace names the failing hop; no connection leaks.

One chain per database backend serves the module; each test breaks one service and
mends it again. The timeouts are the services' defaults: users waits ``DB_TIMEOUT``
(2 s) for db, the gateway ``USERS_TIMEOUT`` (4 s) for users. The database behind db
failing is test_database_faults.py.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faulttools import Chain, Figures, open_sockets, process_connections_to

from support.databases import make_database
from support.otlp import OtlpReceiver
from support.traces import Span, poll_until, trace_id_of
from tools.run import port_in_use

DB_TIMEOUT = 2.0
USERS_TIMEOUT = 4.0
#: Scheduling slack on a busy 2-core machine, on top of a timeout.
SLACK = 2.0
CONCURRENT = 10


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def chain(
    backend: str,
    request: pytest.FixtureRequest,
    otlp: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    workdir = Path(tmp_path_factory.mktemp(f"service-faults-{backend}"))
    chain = Chain(workdir, otlp.endpoint, database=make_database(request, backend, workdir))
    chain.start()
    try:
        yield chain
    finally:
        chain.stop()
        assert not any(port_in_use(s.port) for s in chain.services.values())


@pytest.fixture(scope="module")
def user_url(chain: Chain) -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    answer = httpx.post(f"{chain.url()}/api/users", json={"name": "Ada", "email": email})
    assert answer.status_code == 201, answer.text
    return f"{chain.url()}{answer.headers['location']}"


async def _burst(url: str, count: int = CONCURRENT) -> list[tuple[httpx.Response, float]]:
    """``count`` concurrent GETs, each on its own connection; answers and seconds taken."""

    async def one() -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            answer = await client.get(url)
            return answer, time.monotonic() - started

    return await asyncio.gather(*(one() for _ in range(count)))


def _settled_sockets(pid: int, bound: int) -> int:
    """The socket count of ``pid`` once it is at most ``bound`` (or after 10 s)."""
    try:
        return poll_until(lambda: open_sockets(pid), lambda n: n <= bound, timeout=10)
    except TimeoutError:
        return open_sockets(pid)


def _assert_problem(answer: httpx.Response, status: int, names: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert names in problem["detail"]


def _trace(otlp: OtlpReceiver, answer: httpx.Response, spans: int) -> list[Span]:
    trace_id = trace_id_of(answer.headers["traceparent"])
    return poll_until(
        lambda: otlp.spans(trace_id),
        lambda got: len(got) >= spans,
        timeout=15,
        what=f"{spans} spans of {trace_id}",
    )


def _by_name(spans: list[Span]) -> dict[tuple[str, str], Span]:
    return {(s.service, s.kind): s for s in spans}


def test_dead_db_is_a_503_naming_db(
    chain: Chain, otlp: OtlpReceiver, user_url: str, figures: Figures
) -> None:
    asyncio.run(_burst(user_url))  # fill the connection pools: the baseline has them
    baseline = open_sockets(chain.pid("users"))
    chain.kill("db")
    try:
        answers = asyncio.run(_burst(user_url))
        for answer, took in answers:
            _assert_problem(answer, 503, "db-proxy")
            assert took < DB_TIMEOUT, f"answered after {took:.2f} s"
        after = _settled_sockets(chain.pid("users"), baseline)
        spans = _by_name(_trace(otlp, answers[0][0], 4))
    finally:
        chain.start("db")
    figures(
        f"db dead: {len(answers)} x 503 in at most {max(t for _, t in answers):.2f} s; "
        f"users sockets {baseline} -> {after}"
    )
    assert after <= baseline, f"users holds {after - baseline} more sockets"
    failing = spans["user-service", "CLIENT"]
    assert failing.error
    assert "exception" in failing.events
    assert failing.attributes["peer.service"] == "db-proxy"
    for key in (("user-service", "SERVER"), ("api-gateway", "CLIENT"), ("api-gateway", "SERVER")):
        assert spans[key].error, key
    assert httpx.get(user_url).status_code == 200  # mended


def test_dead_users_is_a_503_naming_users(
    chain: Chain, otlp: OtlpReceiver, user_url: str, figures: Figures
) -> None:
    asyncio.run(_burst(user_url))
    baseline = open_sockets(chain.pid("gateway"))
    chain.kill("users")
    try:
        answers = asyncio.run(_burst(user_url))
        for answer, took in answers:
            _assert_problem(answer, 503, "user-service")
            assert took < USERS_TIMEOUT, f"answered after {took:.2f} s"
        after = _settled_sockets(chain.pid("gateway"), baseline)
        spans = _by_name(_trace(otlp, answers[0][0], 2))
    finally:
        chain.start("users")
    figures(
        f"users dead: {len(answers)} x 503 in at most {max(t for _, t in answers):.2f} s; "
        f"gateway sockets {baseline} -> {after}"
    )
    assert after <= baseline, f"gateway holds {after - baseline} more sockets"
    failing = spans["api-gateway", "CLIENT"]
    assert failing.error
    assert "exception" in failing.events
    assert spans["api-gateway", "SERVER"].error
    assert httpx.get(user_url).status_code == 200


@pytest.mark.parametrize(
    ("hung", "caller", "peer", "timeout"),
    [("db", "users", "db-proxy", DB_TIMEOUT), ("users", "gateway", "user-service", USERS_TIMEOUT)],
)
def test_hanging_service_is_a_504_within_the_timeout(
    chain: Chain,
    otlp: OtlpReceiver,
    user_url: str,
    figures: Figures,
    hung: str,
    caller: str,
    peer: str,
    timeout: float,
) -> None:
    asyncio.run(_burst(user_url))
    hung_port = chain.services[hung].port
    chain.signal(hung, signal.SIGSTOP)
    try:
        answers = asyncio.run(_burst(user_url))
        # The peer is still stopped: its kernel accepted the connections, so any the
        # caller had parked instead of closing on timeout would still be open now.
        parked = process_connections_to(chain.pid(caller), hung_port)
    finally:
        chain.signal(hung, signal.SIGCONT)
    for answer, took in answers:
        _assert_problem(answer, 504, peer)
        assert timeout * 0.9 <= took < timeout + SLACK, f"answered after {took:.2f} s"
    figures(
        f"{hung} hanging (SIGSTOP): {len(answers)} x 504 in "
        f"{min(t for _, t in answers):.2f}-{max(t for _, t in answers):.2f} s "
        f"(timeout {timeout:g} s); {caller} connections to {hung} left open: {parked}"
    )
    assert parked == 0, f"{caller} keeps {parked} timed-out connections to {hung} open"

    service = {"users": "user-service", "gateway": "api-gateway"}[caller]
    trace = _trace(otlp, answers[0][0], 2 if caller == "gateway" else 4)
    failing = next(s for s in trace if s.service == service and s.kind == "CLIENT")
    assert failing.error
    assert "exception" in failing.events
    root = next(s for s in trace if s.parent_id is None)
    assert root.error
