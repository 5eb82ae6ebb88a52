"""SIGTERM under load: in-flight requests complete, their spans are flushed, the
database closes cleanly (on SQLite and on PostgreSQL) and every service exits in
bounded time.

db answers slowly here (the ``slow-db`` demo scenario, 800 ms), so requests are
provably inside the chain when the gateway gets SIGTERM: the test waits until users
holds that many connections to db.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from faulttools import ChainFactory, Figures, connections_to

from support.databases import make_database
from support.otlp import OtlpReceiver
from support.traces import poll_until

IN_FLIGHT = 6
EXIT_WITHIN = 10.0  # seconds from SIGTERM to exit, per service


def test_sigterm_under_load_finishes_in_flight_requests_and_flushes(
    make_chain: ChainFactory,
    receiver: OtlpReceiver,
    figures: Figures,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    # Spans wait 10 s for their batch (longer than any service takes to stop), so only
    # the shutdown flush can send the spans of the requests in flight.
    env = {"DEMO_SCENARIOS": "1", "DEMO_DB_LATENCY_MS": "800", "OTEL_BSP_SCHEDULE_DELAY": "10000"}
    database = make_database(request, backend, tmp_path)
    if database.server_log is not None:
        # PostgreSQL logs a connection that ends without a goodbye only at DEBUG1.
        database.fetch(f"ALTER DATABASE {database.name} SET log_min_messages = debug1")
    chain = make_chain(receiver.endpoint, env, database=database)
    url = f"{chain.url()}/api/users"
    db_port = chain.services["db"].port
    outcomes: dict[str, int | str] = {}  # request id -> status, or the error's name
    answered_after_sigterm = 0
    sigterm_at = 0.0

    async def create(client: httpx.AsyncClient, rid: str) -> None:
        nonlocal answered_after_sigterm
        headers = {"baggage": "demo.scenario=slow-db", "x-request-id": rid}
        body = {"name": "Ada", "email": f"{rid}@example.com"}
        try:
            answer = await client.post(url, json=body, headers=headers)
            outcomes[rid] = answer.status_code
            if sigterm_at and answer.status_code == 201:
                answered_after_sigterm += 1
        except httpx.HTTPError as exc:
            outcomes[rid] = type(exc).__name__

    async def load() -> None:
        nonlocal sigterm_at
        tasks = []
        # A client per request: no request waits for a pooled connection.
        async with httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client:
            while connections_to(db_port) < IN_FLIGHT:  # steady load until enough are in db
                tasks.append(asyncio.create_task(create(client, uuid.uuid4().hex)))
                await asyncio.sleep(0.05)
                assert len(tasks) < 400, "requests never reached db"
            sigterm_at = time.monotonic()
            chain.signal("gateway", signal.SIGTERM)
            for _ in range(20):  # and keep coming while the gateway shuts down
                tasks.append(asyncio.create_task(create(client, uuid.uuid4().hex)))
                await asyncio.sleep(0.05)
            await asyncio.gather(*tasks)

    asyncio.run(load())
    assert chain.wait_exit("gateway", timeout=EXIT_WITHIN) == 0
    gateway_exit = time.monotonic() - sigterm_at
    handled = {
        r["request.id"]
        for r in chain.log_records("gateway")
        if r["logger"] == "cello_telemetry.access" and r["message"].startswith("POST")
    }
    users_exit = chain.terminate("users", timeout=EXIT_WITHIN)
    server_log_before = database.server_log.stat().st_size if database.server_log else 0
    db_exit = chain.terminate("db", timeout=EXIT_WITHIN)

    statuses = Counter(str(v) for v in outcomes.values())
    created = {rid for rid, status in outcomes.items() if status == 201}
    figures(
        f"{backend}: SIGTERM to the gateway with {IN_FLIGHT}+ requests inside: {dict(statuses)}; "
        f"{answered_after_sigterm} answered after SIGTERM; exits: gateway "
        f"{gateway_exit:.2f} s, users {users_exit:.2f} s, db {db_exit:.2f} s"
    )
    # Every request the gateway took on was answered, and with a 201; the ones it
    # never took on were refused (connection errors), none was half-answered.
    assert handled == created
    assert answered_after_sigterm >= IN_FLIGHT

    # Spans: each service flushed everything it ended before it exited.
    for name, service in (
        ("gateway", "api-gateway"),
        ("users", "user-service"),
        ("db", "db-proxy"),
    ):
        stopped = [r for r in chain.log_records(name) if r["message"] == "telemetry stopped"]
        assert len(stopped) == 1, name
        spans = stopped[0]["spans"]
        assert spans["dropped_queue_full"] == spans["dropped_export_failed"] == 0, (name, spans)
        assert spans["pending"] == 0, (name, spans)
        assert spans["exported"] == len([s for s in receiver.spans() if s.service == service])
        if name == "gateway":
            assert spans["exported"] == 2 * len(handled)  # SERVER + CLIENT each

    # The database: db closed its connections on the way out, and every 201 is stored.
    if backend == "sqlite":  # the WAL checkpointed and removed on close, the file intact
        assert database.file is not None
        assert not database.file.with_name("users.db-wal").exists()
        assert database.fetch("PRAGMA integrity_check") == [("ok",)]
    else:  # PostgreSQL: each pooled connection said goodbye
        assert database.server_log is not None
        # Once db's server processes are gone, each has logged how its connection ended.
        poll_until(
            lambda: database.fetch(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'db-proxy' AND datname = current_database()"
            ),
            lambda rows: rows == [(0,)],
            timeout=10,
            what="db's connections gone from pg_stat_activity",
        )
        with database.server_log.open("rb") as log:
            log.seek(server_log_before)
            assert b"unexpected EOF on client connection" not in log.read()
    assert {email.split("@")[0] for email in database.emails()} == created
