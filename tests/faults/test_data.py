"""Data under concurrency and crashes: concurrent creates all land, a contested e-mail
address is created exactly once, and a killed db loses no acknowledged write.

Each test runs on SQLite and on PostgreSQL (the ``backend`` fixture).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faulttools import Chain, ChainFactory, Figures

from support.databases import make_database
from support.otlp import OtlpReceiver


@pytest.fixture(scope="module")
def data_chain(
    backend: str,
    request: pytest.FixtureRequest,
    shared_receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    """A healthy chain on ``backend`` with generous timeouts (db's 10 s, users' 10 s,
    the gateway's 15 s): these tests are about stored data, and on a busy machine a
    burst of 100 creates can take users past its default 2 s wait for db, which turns
    a committed write into an ambiguous 504. The default timeouts are tested in
    test_service_faults.py and test_database_faults.py.
    """
    workdir = tmp_path_factory.mktemp(f"data-{backend}")
    env = {"DATABASE_TIMEOUT": "10", "DB_TIMEOUT": "10", "USERS_TIMEOUT": "15"}
    chain = Chain(workdir, shared_receiver.endpoint, env, make_database(request, backend, workdir))
    chain.start()
    try:
        yield chain
    finally:
        chain.stop()


async def _create_many(gateway: str, emails: list[str]) -> list[httpx.Response]:
    """POST one user per address, all at once."""
    limits = httpx.Limits(max_connections=len(emails))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(f"{gateway}/api/users", json={"name": "Ada", "email": email})
                for email in emails
            )
        )


def test_100_concurrent_creates_are_all_stored(data_chain: Chain, figures: Figures) -> None:
    gateway = data_chain.url()
    emails = [f"many-{uuid.uuid4().hex[:12]}@example.com" for _ in range(100)]
    started = time.monotonic()
    answers = asyncio.run(_create_many(gateway, emails))
    took = time.monotonic() - started
    assert Counter(a.status_code for a in answers) == {201: 100}, {a.text for a in answers}
    users = {a.json()["id"]: a.json()["email"] for a in answers}
    assert sorted(users.values()) == sorted(emails)  # 100 distinct ids, one per address
    for user_id, email in users.items():
        stored = httpx.get(f"{gateway}/api/users/{user_id}")
        assert stored.status_code == 200
        assert stored.json()["email"] == email
    backend = data_chain.database.backend
    figures(f"{backend}: 100 concurrent creates: 100 x 201 in {took:.2f} s, each read back")


def test_same_email_20_times_at_once_is_created_once(data_chain: Chain) -> None:
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    answers = asyncio.run(_create_many(data_chain.url(), [email] * 20))
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 19}
    conflicts = {a.headers["content-type"] for a in answers if a.status_code == 409}
    assert conflicts == {"application/problem+json"}
    assert data_chain.database.emails().count(email) == 1  # stored once, by the database


def test_killed_db_loses_no_acknowledged_write(
    make_chain: ChainFactory,
    receiver: OtlpReceiver,
    figures: Figures,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    chain = make_chain(receiver.endpoint, database=make_database(request, backend, tmp_path))
    gateway = chain.url()
    acknowledged: dict[int, str] = {}
    failed: Counter[str] = Counter()

    enough = asyncio.Event()

    async def writer(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            email = f"crash-{uuid.uuid4().hex[:12]}@example.com"
            try:
                answer = await client.post(
                    f"{gateway}/api/users", json={"name": "Ada", "email": email}
                )
            except httpx.HTTPError as exc:
                failed[type(exc).__name__] += 1
                continue
            if answer.status_code == 201:
                acknowledged[answer.json()["id"]] = email
                if len(acknowledged) >= 60:
                    enough.set()
            else:
                failed[str(answer.status_code)] += 1

    async def load() -> None:
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=30) as client:
            writers = [asyncio.create_task(writer(client, stop)) for _ in range(8)]
            await asyncio.wait_for(enough.wait(), 60)  # writes are flowing: crash db now
            chain.signal("db", signal.SIGKILL)
            await asyncio.sleep(1.0)  # writers keep going against the dead db
            stop.set()
            await asyncio.gather(*writers)

    asyncio.run(load())
    chain.wait_exit("db", timeout=10)
    if backend == "sqlite":  # what the crash left on disk
        assert chain.database.fetch("PRAGMA integrity_check") == [("ok",)]
    chain.start("db")  # the same DATABASE_URL

    for user_id, email in acknowledged.items():
        stored = httpx.get(f"{gateway}/api/users/{user_id}")
        assert stored.status_code == 200, (user_id, stored.text)
        assert stored.json()["email"] == email
    figures(
        f"{backend}: db SIGKILLed under 8 concurrent writers: {len(acknowledged)} acknowledged "
        f"writes, "
        f"all read back after restart; refused meanwhile: {dict(failed)}"
    )
    assert failed, "the kill happened after the writers stopped"
