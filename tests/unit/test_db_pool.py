"""db's connection pool as ``/health`` shows it, and the warm-up that fills it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from db.database import UserStore, create_engine, prepare_database


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
