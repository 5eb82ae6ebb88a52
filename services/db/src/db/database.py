"""The users table and the queries on it: SQLAlchemy 2 async on SQLite or PostgreSQL.

Every statement is built with SQLAlchemy Core, so values always travel as bound
parameters; no SQL is ever assembled from strings. The same code runs on both
databases: only :func:`create_engine` knows which one it talks to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    exc,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool, QueuePool

from cello_problem import HTTPError
from cello_settings import ConfigError

from .settings import SERVICE_NAME

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
    # AUTOINCREMENT: a deleted user's id is never handed out again (a PostgreSQL
    # sequence never hands one out twice anyway).
    sqlite_autoincrement=True,
)

_COLUMNS = (users.c.id, users.c.name, users.c.email, users.c.created_at)

# Every statement is built once, its values bound per execution: SQLAlchemy then finds
# the compiled SQL in its cache instead of building and keying a new statement per request.
_INSERT = insert(users).returning(*_COLUMNS)
_GET = select(*_COLUMNS).where(users.c.id == bindparam("user_id"))
_PAGE = select(*_COLUMNS).order_by(users.c.id).limit(bindparam("limit")).offset(bindparam("offset"))
_PAGE_IDS = (
    select(users.c.id).order_by(users.c.id).limit(bindparam("limit")).offset(bindparam("offset"))
)
_COUNT = select(func.count()).select_from(users)
_DELETE = delete(users).where(users.c.id == bindparam("user_id"))


def create_engine(url: str, pool_size: int = 16, timeout: float = 1.0) -> AsyncEngine:
    """An async engine for ``url``: at most ``pool_size`` connections, none waited for
    longer than ``timeout``.

    The pool has no overflow: its bound is what a database server's
    ``max_connections`` is planned with, and a request beyond it waits (up to
    ``timeout``) for a connection to come free instead of opening and closing one of
    its own, which on SQLite means a new thread and three PRAGMAs per request. Size it
    to the concurrency db expects (users' connections to it). On PostgreSQL ``timeout`` also bounds
    connecting and each statement, and every pooled connection is tested before use,
    so db reconnects by itself after the server restarts.
    """
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": timeout}
    if parsed.get_backend_name() == "postgresql":
        # asyncpg: `timeout` bounds connecting, `command_timeout` each statement; the
        # application name shows db's connections in pg_stat_activity.
        connect_args = {
            "timeout": timeout,
            "command_timeout": timeout,
            "server_settings": {"application_name": SERVICE_NAME},
        }
        return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **pool)
    else:  # an in-memory database lives in its one connection, which SQLAlchemy keeps
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


def prepare_database(url: str, timeout: float = 1.0) -> None:
    """Create the schema before db serves, on a connection of its own.

    Raises:
        ConfigError: the database cannot be reached, so db does not start at all
            rather than answer ``/health`` while every request would fail.
    """

    async def prepare() -> None:
        engine = create_engine(url, pool_size=1, timeout=timeout)
        try:
            await create_schema(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(prepare())
    except (OSError, exc.DBAPIError) as error:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        raise ConfigError(f"DATABASE_URL={shown}: cannot create the schema ({reason})") from None


def pool_figures(pool: Pool) -> tuple[int, int, int]:
    """A pool's bound, its idle connections and those in use.

    :func:`create_engine` gives every file or server database a ``QueuePool``; an
    in-memory database keeps its one connection in a pool without a bound, counted as
    a pool of one.
    """
    if isinstance(pool, QueuePool):
        return pool.size(), pool.checkedin(), pool.checkedout()
    return 1, 0, 0


class UserStore:
    """The four operations the proxy offers, each one transaction.

    A database that refuses connections, drops them or does not answer in time
    becomes a 503 or 504 problem naming the database, never a hang or a bare 500.
    """

    def __init__(self, engine: AsyncEngine, timeout: float = 1.0) -> None:
        self._engine = engine
        self._timeout = timeout

    @asynccontextmanager
    async def _connect(self, transaction: bool = False) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; in a transaction that commits on exit if asked for."""
        opened = self._engine.begin() if transaction else self._engine.connect()
        try:
            async with opened as connection:
                yield connection
        except exc.TimeoutError:  # the pool: no connection came free in time
            raise HTTPError(503, "the database is busy: no free connection") from None
        except TimeoutError:
            raise HTTPError(
                504, f"the database did not answer within {self._timeout:g} s"
            ) from None
        except OSError:  # refused, reset, unreachable: while connecting
            raise HTTPError(503, "the database is unavailable") from None
        except exc.DBAPIError as error:
            if error.connection_invalidated or isinstance(error, exc.OperationalError):
                raise HTTPError(503, "the database is unavailable") from None
            raise

    async def warm_up(self) -> None:
        """Open every pooled connection and run each read statement once.

        For start-up, before the engine is instrumented: the first requests then find
        connections open and statements compiled, and the warm-up makes no spans.
        """
        pool_size = pool_figures(self._engine.pool)[0]

        async def read() -> None:
            async with self._connect() as connection:
                await connection.execute(_GET, {"user_id": 0})
                await connection.execute(_PAGE, {"limit": 1, "offset": 0})
                await connection.execute(_PAGE_IDS, {"limit": 1, "offset": 0})
                await connection.execute(_COUNT)

        await asyncio.gather(*(read() for _ in range(pool_size)))

    def pool_status(self) -> dict[str, int]:
        """The connection pool as ``/health`` shows it: its bound and what is open."""
        size, checked_in, checked_out = pool_figures(self._engine.pool)
        return {"pool_size": size, "open": checked_in + checked_out, "in_use": checked_out}

    async def create(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user; 409 when the e-mail address is taken (even by a racing insert)."""
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        values = {"name": name, "email": email, "created_at": created_at}
        try:
            async with self._connect(transaction=True) as connection:
                row = (await connection.execute(_INSERT, values)).one()
        except exc.IntegrityError:
            # The UNIQUE constraint, not a prior SELECT, decides: that is what makes
            # two concurrent creates with the same address give exactly one 201.
            raise HTTPError(409, "a user with this email already exists") from None
        return dict(row._mapping)

    async def get(self, user_id: int) -> dict[str, Any]:
        """One user, or 404."""
        async with self._connect() as connection:
            row = (await connection.execute(_GET, {"user_id": user_id})).first()
        if row is None:
            raise HTTPError(404, f"user {user_id} does not exist")
        return dict(row._mapping)

    async def list(self, limit: int, offset: int) -> dict[str, Any]:
        """A page of users in id order, with the total count."""
        async with self._connect() as connection:
            rows = (await connection.execute(_PAGE, {"limit": limit, "offset": offset})).all()
            total = (await connection.execute(_COUNT)).scalar_one()
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
        page = {"limit": limit, "offset": offset}
        async with self._connect() as connection:
            rows = []
            for user_id in (await connection.execute(_PAGE_IDS, page)).scalars().all():
                row = (await connection.execute(_GET, {"user_id": user_id})).first()
                if row is not None:  # deleted in between: the page is one shorter
                    rows.append(row)
            total = (await connection.execute(_COUNT)).scalar_one()
        return {
            "items": [dict(row._mapping) for row in rows],
            "limit": limit,
            "offset": offset,
            "total": total,
        }

    async def delete(self, user_id: int) -> None:
        """Delete a user, or 404."""
        async with self._connect(transaction=True) as connection:
            result = await connection.execute(_DELETE, {"user_id": user_id})
        if result.rowcount == 0:
            raise HTTPError(404, f"user {user_id} does not exist")
