"""The PostgreSQL server behind db dies, restarts or stops answering: db answers in
time with a problem of its own, holds no more connections than its pool allows and
reconnects by itself when the server is back.

SQLite is a file inside db's process, so none of this applies to it. The module runs
its own cluster (tools/pgcluster.py) to break; db has its default settings except
where a test says otherwise: ``DATABASE_TIMEOUT`` 1 s, below users' ``DB_TIMEOUT`` 2 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from faulttools import Chain, Figures
from pgcluster import Cluster

from support.databases import Database
from support.otlp import OtlpReceiver
from support.traces import poll_until, trace_id_of

DATABASE_TIMEOUT = 1.0  # db's default
DB_TIMEOUT = 2.0  # users' default wait for db
CONCURRENT = 10


@pytest.fixture(scope="module")
def cluster(postgres_bindir: Path) -> Iterator[Cluster]:
    with Cluster(bindir=postgres_bindir) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def _chain(cluster: Cluster, otlp: OtlpReceiver, workdir: Path, **env: str) -> Chain:
    url = cluster.create_database(f"faults_{uuid.uuid4().hex[:8]}")
    return Chain(workdir, otlp.endpoint, env, Database("postgresql", url, server_log=cluster.log))


@pytest.fixture(scope="module")
def chain(
    cluster: Cluster, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chain]:
    chain = _chain(cluster, otlp, tmp_path_factory.mktemp("database-faults"))
    chain.start()
    try:
        yield chain
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def user_url(chain: Chain) -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    answer = httpx.post(f"{chain.url()}/api/users", json={"name": "Ada", "email": email})
    assert answer.status_code == 201, answer.text
    return f"{chain.url()}{answer.headers['location']}"


async def _burst(url: str, count: int = CONCURRENT) -> list[tuple[httpx.Response, float]]:
    """``count`` concurrent GETs; each answer and the seconds it took."""

    async def one(client: httpx.AsyncClient) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        answer = await client.get(url)
        return answer, time.monotonic() - started

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as client:
        return await asyncio.gather(*(one(client) for _ in range(count)))


def _assert_problem(answer: httpx.Response, status: int, detail: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == detail


def test_dead_postgres_is_a_fast_503_from_db(
    chain: Chain, cluster: Cluster, otlp: OtlpReceiver, user_url: str, figures: Figures
) -> None:
    asyncio.run(_burst(user_url))  # db's pool holds connections to the server now
    cluster.stop("immediate")  # as in a crash: no checkpoint, connections cut
    try:
        answers = asyncio.run(_burst(user_url))
    finally:
        cluster.start()
    for answer, took in answers:
        # db's own answer, passed on by users and the gateway; not users' 2 s timeout.
        _assert_problem(answer, 503, "user-service: db-proxy: the database is unavailable")
        assert took < DB_TIMEOUT, f"answered after {took:.2f} s"
    figures(f"PostgreSQL dead: {len(answers)} x 503 in at most {max(t for _, t in answers):.2f} s")

    trace_id = trace_id_of(answers[0][0].headers["traceparent"])
    spans = poll_until(
        lambda: otlp.spans(trace_id), lambda got: len(got) >= 5, timeout=15, what="the trace"
    )
    (db_server,) = [s for s in spans if s.service == "db-proxy" and s.kind == "SERVER"]
    assert db_server.error
    assert db_server.attributes["http.status_code"] == 503
    # Back: the very next request reaches the restarted server.
    assert httpx.get(user_url).status_code == 200


def test_db_reconnects_after_postgres_restarts_while_idle(
    chain: Chain, cluster: Cluster, user_url: str
) -> None:
    asyncio.run(_burst(user_url))  # pooled connections to the server as it is now
    cluster.stop("fast")
    cluster.start()
    # Every pooled connection died with the old server; db tests each one before use
    # (pool_pre_ping) and replaces it, so no request sees the restart.
    answers = asyncio.run(_burst(user_url))
    assert Counter(answer.status_code for answer, _ in answers) == {200: CONCURRENT}


def test_postgres_taking_no_connections_is_a_504_from_db_within_its_timeout(
    chain: Chain, cluster: Cluster, user_url: str, figures: Figures
) -> None:
    # db opens its whole pool at start-up; end those sessions, so the next request
    # finds its pooled connection dead (pre-ping) and must connect anew.
    database = chain.env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    async def end_db_sessions() -> None:
        admin = await asyncpg.connect(database)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'db-proxy'"
            )
        finally:
            await admin.close()

    asyncio.run(end_db_sessions())
    postmaster = cluster.server_pids()[0]
    # The kernel still accepts connections for the stopped postmaster, which never
    # answers them: only db's connect timeout ends the wait.
    os.kill(postmaster, signal.SIGSTOP)
    try:
        answers = asyncio.run(_burst(user_url, 3))
    finally:
        os.kill(postmaster, signal.SIGCONT)
    detail = f"user-service: db-proxy: the database did not answer within {DATABASE_TIMEOUT:g} s"
    for answer, took in answers:
        _assert_problem(answer, 504, detail)
        assert DATABASE_TIMEOUT * 0.9 <= took < DB_TIMEOUT, f"answered after {took:.2f} s"
    figures(
        f"PostgreSQL taking no connections: {len(answers)} x 504 in "
        f"{min(t for _, t in answers):.2f}-{max(t for _, t in answers):.2f} s"
    )
    assert httpx.get(user_url).status_code == 200


def test_db_holds_no_more_connections_than_its_pool(
    cluster: Cluster, otlp: OtlpReceiver, tmp_path: Path, figures: Figures
) -> None:
    pool_size, timeout, requests = 3, 3.0, 8
    chain = _chain(
        cluster, otlp, tmp_path, DATABASE_POOL_SIZE=str(pool_size), DATABASE_TIMEOUT=str(timeout)
    )
    chain.start()
    database = chain.env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    count = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'db-proxy' AND datname = current_database()"
    )

    async def run() -> tuple[list[tuple[httpx.Response, float]], int]:
        locker = await asyncpg.connect(database)
        watcher = await asyncpg.connect(database)
        try:
            # Every SELECT of db now waits for the lock, holding its connection.
            async with locker.transaction():
                await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                burst = asyncio.ensure_future(_burst(f"{chain.url('db')}/users", requests))
                most = 0
                while not burst.done():
                    most = max(most, await watcher.fetchval(count))
                    await asyncio.sleep(0.02)
                return burst.result(), most
        finally:
            await locker.close()
            await watcher.close()

    try:
        answers, most = asyncio.run(run())
    finally:
        chain.stop()
    statuses = Counter(answer.status_code for answer, _ in answers)
    figures(
        f"{requests} requests on a locked table, pool of {pool_size}: {dict(statuses)}; "
        f"at most {most} connections"
    )
    assert most == pool_size
    for answer, _ in answers:
        assert answer.headers["content-type"] == "application/problem+json"
    # The statements that waited for the lock end at the statement timeout; the
    # requests that waited for a connection at the pool's.
    assert statuses[504] >= 1
    assert set(statuses) <= {503, 504}


def test_frozen_postgres_is_answered_within_the_timeout_and_db_is_not_ready(
    cluster: Cluster, otlp: OtlpReceiver, tmp_path: Path, figures: Figures
) -> None:
    pool_size, requests, slack = 16, 24, 0.5
    chain = _chain(cluster, otlp, tmp_path, DATABASE_POOL_SIZE=str(pool_size))
    chain.start("db")
    db = chain.url("db")
    database = chain.env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    sessions = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'db-proxy' AND datname = current_database()"
    )

    async def server_count() -> int:
        admin = await asyncpg.connect(database)
        try:
            return int(await admin.fetchval(sessions))
        finally:
            await admin.close()

    try:
        asyncio.run(_burst(f"{db}/users", pool_size))  # every pooled connection in use once
        cluster.signal(signal.SIGSTOP)  # the server and every backend
        try:
            answers = asyncio.run(_burst(f"{db}/users", requests))
            ready = httpx.get(f"{db}/health/ready", timeout=5)
            live = httpx.get(f"{db}/health/live", timeout=5)
            during = httpx.get(f"{db}/health", timeout=5).json()["database"]
        finally:
            cluster.signal(signal.SIGCONT)
        statuses = dict(Counter(answer.status_code for answer, _ in answers))
        took = [t for _, t in answers]
        figures(
            f"PostgreSQL frozen: {requests} reads, {statuses} in {min(took):.2f}-{max(took):.2f} s;"
            f" ready {ready.status_code}"
        )
        for answer, took in answers:
            assert answer.status_code in (503, 504), answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert took < DATABASE_TIMEOUT + slack, f"answered after {took:.2f} s"
        assert ready.status_code == 503, ready.text
        assert ready.headers["content-type"] == "application/problem+json"
        assert live.status_code == 200
        # Every connection cut off by the timeout was closed, none is still held.
        assert during["in_use"] == 0, during

        # Recovered: ready again, and db counts exactly the sessions the server has.
        poll_until(
            lambda: httpx.get(f"{db}/health/ready", timeout=5).status_code,
            lambda status: status == 200,
            timeout=15,
            what="db ready again",
        )

        def both() -> tuple[int, int]:
            return httpx.get(f"{db}/health").json()["database"]["open"], asyncio.run(server_count())

        poll_until(both, lambda got: got[0] == got[1], timeout=15, what="db's count = server's")
        assert httpx.get(f"{db}/users").status_code == 200
        poll_until(both, lambda got: got[0] == got[1], timeout=15, what="db's count = server's")
    finally:
        chain.stop()
