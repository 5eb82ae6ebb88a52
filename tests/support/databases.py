"""The databases db runs on in the tests: a SQLite file, or a database of its own in
the suite's throwaway PostgreSQL cluster (``tools/pgcluster.py``).

A test or fixture that should hold on both asks for the ``backend`` fixture (it is
parametrized over :data:`BACKENDS`) and turns it into a :class:`Database`::

    def test_something(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        database = make_database(request, backend, tmp_path)
        chain = Chain(tmp_path, otlp_endpoint, database=database)
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

BACKENDS = ("sqlite", "postgresql")

_names = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Database:
    """Where db keeps its users: ``backend`` and the ``DATABASE_URL`` to give db."""

    backend: str
    url: str
    #: The SQLite file (``None`` on PostgreSQL).
    file: Path | None = None
    #: The PostgreSQL server's log (``None`` on SQLite).
    server_log: Path | None = None

    @property
    def name(self) -> str:
        """The database's name in the server (PostgreSQL), or its file name."""
        return self.url.rsplit("/", 1)[1]

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one query (without parameters) on the database directly, around db."""
        if self.file is not None:
            with closing(sqlite3.connect(self.file)) as connection:
                return connection.execute(sql).fetchall()
        return asyncio.run(_fetch_postgres(self.url, sql))

    def emails(self) -> list[str]:
        """Every stored user's e-mail address, as the database has it."""
        return [email for (email,) in self.fetch("SELECT email FROM users")]


async def _fetch_postgres(url: str, sql: str) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


def sqlite_database(workdir: Path) -> Database:
    """A SQLite file in ``workdir`` (db creates it)."""
    file = workdir / "users.db"
    return Database("sqlite", f"sqlite+aiosqlite:///{file}", file)


def make_database(request: pytest.FixtureRequest, backend: str, workdir: Path) -> Database:
    """A fresh, empty database on ``backend``; PostgreSQL ones live in the suite's cluster."""
    if backend == "sqlite":
        return sqlite_database(workdir)
    cluster = request.getfixturevalue("postgres")  # skips the test when PostgreSQL is missing
    url = cluster.create_database(f"users_{next(_names)}")
    return Database("postgresql", url, server_log=cluster.log)
