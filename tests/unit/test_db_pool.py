"""db's connection pool as ``/health`` shows it, the warm-up that fills it, reads in
autocommit and writes that commit only while their caller waits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from cello_problem import HTTPError
from cello_telemetry import deadline
from db.database import UserStore, create_engine, prepare_database
from support.databases import Database


def test_warm_up_opens_every_pooled_connection(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    prepare_database(url, 1.0)

    async def main() -> tuple[dict[str, int], dict[str, int]]:
        engine = create_engine(url, pool_size=3)
        store = UserStore(engine)
        try:
            before = store.pool_status()
            await store.warm_up()
            return before, store.pool_status()
        finally:
            await engine.dispose()

    before, after = asyncio.run(main())

    assert before == {"pool_size": 3, "open": 0, "in_use": 0}
    assert after == {"pool_size": 3, "open": 3, "in_use": 0}


def test_an_in_memory_database_is_a_pool_of_one() -> None:
    async def main() -> dict[str, int]:
        engine = create_engine("sqlite+aiosqlite:///:memory:")
        try:
            return UserStore(engine).pool_status()
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == {"pool_size": 1, "open": 0, "in_use": 0}


def test_sqlite_reads_skip_the_rollback_and_writes_still_commit(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    prepare_database(url, 1.0)
    rollbacks: list[object] = []

    async def main() -> None:
        engine = create_engine(url, pool_size=2)

        @event.listens_for(engine.sync_engine, "connect")
        def spy(dbapi_connection: Any, _record: Any) -> None:
            driver = dbapi_connection.driver_connection  # aiosqlite's connection
            rollback = driver.rollback

            async def counted() -> None:
                rollbacks.append(driver)
                await rollback()

            driver.rollback = counted  # a test's spy on the driver's rollback

        store = UserStore(engine)
        try:
            created = await store.create("Ada", "ada@example.com")
            rollbacks.clear()
            for _ in range(3):
                assert (await store.get(created["id"]))["email"] == "ada@example.com"
            await store.list(10, 0)
            assert rollbacks == []  # autocommit: nothing to roll back on the way back
            with pytest.raises(HTTPError) as taken:
                await store.create("Ada", "ada@example.com")
            assert taken.value.status == 409
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert Database("sqlite", url, tmp_path / "users.db").emails() == ["ada@example.com"]


def test_a_write_past_its_deadline_is_rolled_back_not_committed(tmp_path: Path) -> None:
    file = tmp_path / "users.db"
    url = f"sqlite+aiosqlite:///{file}"
    prepare_database(url, 1.0)

    async def main() -> int:
        engine = create_engine(url, pool_size=1, timeout=1.0)
        store = UserStore(engine)
        # Another writer holds the write lock: the INSERT waits for it past the deadline.
        with closing(sqlite3.connect(file, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            token = deadline.bind(time.time() + 0.2)
            try:
                with pytest.raises(HTTPError) as late:
                    await store.create("Ada", "late@example.com")
            finally:
                deadline.unbind(token)
            await asyncio.sleep(0.3)  # the INSERT still waits in the driver's thread
            other.execute("COMMIT")  # now it gets the lock, and its connection is gone
        await asyncio.sleep(0.5)
        await engine.dispose()
        return late.value.status

    assert asyncio.run(main()) == 504
    assert Database("sqlite", url, file).emails() == []
