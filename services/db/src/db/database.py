"""The users table and the queries on it: SQLAlchemy 2 async on aiosqlite.

Every statement is built with SQLAlchemy Core, so values always travel as bound
parameters; no SQL is ever assembled from strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cello_telemetry import HTTPError

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
    # AUTOINCREMENT: a deleted user's id is never handed out again.
    sqlite_autoincrement=True,
)

_COLUMNS = (users.c.id, users.c.name, users.c.email, users.c.created_at)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` with WAL, a busy timeout and durable commits."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the writer; busy_timeout makes a concurrent
        # writer wait instead of failing with "database is locked"; synchronous=FULL
        # means an acknowledged write survives even a crash of the machine.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


async def create_schema(engine: AsyncEngine) -> None:
    """Create the table if it does not exist yet."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


class UserStore:
    """The four operations the proxy offers, each one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user; 409 when the e-mail address is taken (even by a racing insert)."""
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        statement = (
            insert(users).values(name=name, email=email, created_at=created_at).returning(*_COLUMNS)
        )
        try:
            async with self._engine.begin() as connection:
                row = (await connection.execute(statement)).one()
        except IntegrityError:
            # The UNIQUE constraint, not a prior SELECT, decides: that is what makes
            # two concurrent creates with the same address give exactly one 201.
            raise HTTPError(409, "a user with this email already exists") from None
        return dict(row._mapping)

    async def get(self, user_id: int) -> dict[str, Any]:
        """One user, or 404."""
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(*_COLUMNS).where(users.c.id == user_id))).first()
        if row is None:
            raise HTTPError(404, f"user {user_id} does not exist")
        return dict(row._mapping)

    async def list(self, limit: int, offset: int) -> dict[str, Any]:
        """A page of users in id order, with the total count."""
        page = select(*_COLUMNS).order_by(users.c.id).limit(limit).offset(offset)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(page)).all()
            total = (await connection.execute(select(func.count()).select_from(users))).scalar_one()
        return {
            "items": [dict(row._mapping) for row in rows],
            "limit": limit,
            "offset": offset,
            "total": total,
        }

    async def list_one_by_one(self, limit: int, offset: int) -> dict[str, Any]:
        """The same page as :meth:`list`, read the N+1 way: the ids, then each user.

        The classic ORM mistake, on purpose: the ``n-plus-one`` demo scenario shows
        what it looks like in a trace, one SELECT span per user.
        """
        ids = select(users.c.id).order_by(users.c.id).limit(limit).offset(offset)
        one = select(*_COLUMNS).where(users.c.id == bindparam("user_id"))
        async with self._engine.connect() as connection:
            rows = []
            for user_id in (await connection.execute(ids)).scalars().all():
                row = (await connection.execute(one, {"user_id": user_id})).first()
                if row is not None:  # deleted in between: the page is one shorter
                    rows.append(row)
            total = (await connection.execute(select(func.count()).select_from(users))).scalar_one()
        return {
            "items": [dict(row._mapping) for row in rows],
            "limit": limit,
            "offset": offset,
            "total": total,
        }

    async def delete(self, user_id: int) -> None:
        """Delete a user, or 404."""
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(users).where(users.c.id == user_id))
        if result.rowcount == 0:
            raise HTTPError(404, f"user {user_id} does not exist")
