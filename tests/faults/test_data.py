"""Data under concurrency and crashes: concurrent creates all land, a contested e-mail
address is created exactly once, and a killed db loses no acknowledged write."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections import Counter

import httpx
from faulttools import Chain, ChainFactory, Figures

from support.otlp import OtlpReceiver


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


def test_100_concurrent_creates_are_all_stored(shared_chain: Chain, figures: Figures) -> None:
    gateway = shared_chain.url()
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
    figures(f"100 concurrent creates: 100 x 201 in {took:.2f} s, each read back")


def test_same_email_20_times_at_once_is_created_once(shared_chain: Chain) -> None:
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    answers = asyncio.run(_create_many(shared_chain.url(), [email] * 20))
    assert Counter(a.status_code for a in answers) == {201: 1, 409: 19}
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["content-type"] == "application/problem+json"
    listed = httpx.get(f"{shared_chain.url()}/api/users?limit=100&offset=0").json()["total"]
    assert listed >= 1


def test_killed_db_loses_no_acknowledged_write(
    make_chain: ChainFactory, receiver: OtlpReceiver, figures: Figures
) -> None:
    chain = make_chain(receiver.endpoint)
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
    with sqlite3.connect(chain.database) as db:  # what the crash left on disk
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    chain.start("db")  # the same DATABASE_URL

    for user_id, email in acknowledged.items():
        stored = httpx.get(f"{gateway}/api/users/{user_id}")
        assert stored.status_code == 200, (user_id, stored.text)
        assert stored.json()["email"] == email
    figures(
        f"db SIGKILLed under 8 concurrent writers: {len(acknowledged)} acknowledged writes, "
        f"all read back after restart; refused meanwhile: {dict(failed)}"
    )
    assert failed, "the kill happened after the writers stopped"
