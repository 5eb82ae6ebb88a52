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
from cello_telemetry import deadline, untraced

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
_PING = select(1)


def _reduce_driver_error(context: exc.ExceptionContext) -> None:
    """Cut a driver's error text down to its class and SQLSTATE, before anyone records it.

    A driver's message may quote the values a statement carried: PostgreSQL's unique
    violation says ``DETAIL: Key (email)=(...) already exists``. The SQL spans' status
    (the contrib instrumentation records ``str()`` of this very exception, from a
    ``handle_error`` listener of its own), SQLAlchemy's wrapping error and any log line
    all read the message later, so it is rewritten here, first: ``IntegrityError
    (SQLSTATE 23505)``, or SQLite's error name (``SQLITE_CONSTRAINT_UNIQUE``). The
    exception's class and codes stay as they were, so handling it is unchanged.
    """
    error = context.original_exception
    code = getattr(error, "sqlstate", None)
    name = getattr(error, "sqlite_errorname", None)
    reason = f"SQLSTATE {code}" if code else (name or "no code")
    error.args = (f"{type(error).__name__} ({reason})",)


def create_engine(url: str, pool_size: int = 16, timeout: float = 1.0) -> AsyncEngine:
    """An async engine for ``url``: at most ``pool_size`` connections, none waited for
    longer than ``timeout``.

    The pool has no overflow: its bound is what a database server's
    ``max_connections`` is planned with, and a request beyond it waits (up to
    ``timeout``) for a connection to come free instead of opening and closing one of
    its own, which on SQLite means a new thread and three PRAGMAs per request. Size it
    to the concurrency db expects (users' connections to it). On PostgreSQL ``timeout`` also bounds
    connecting and each statement, and every pooled connection is tested before use,
    so db reconnects by itself after the server restarts; on SQLite it bounds the wait
    for the write lock. :class:`UserStore` bounds each operation as a whole as well.

    No parameter value and no driver message text reaches an error's text (and so no
    span or log line): ``hide_parameters`` and :func:`_reduce_driver_error`.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": timeout,
        "hide_parameters": True,
    }
    if parsed.get_backend_name() == "postgresql":
        # asyncpg: `timeout` bounds connecting, `command_timeout` each statement, and
        # the server's own statement_timeout ends a statement whose client went away;
        # the application name shows db's connections in pg_stat_activity.
        connect_args = {
            "timeout": timeout,
            "command_timeout": timeout,
            "server_settings": {
                "application_name": SERVICE_NAME,
                "statement_timeout": str(round(timeout * 1000)),
            },
        }
        engine = create_async_engine(url, pool_pre_ping=True, connect_args=connect_args, **options)
        event.listen(engine.sync_engine, "handle_error", _reduce_driver_error, insert=True)
        return engine
    database = parsed.database
    # Reads run in autocommit and skip the ROLLBACK each connection would get on its
    # way back to the pool: 18 % less CPU per read in the benchmark. Writes take a
    # transaction of their own (UserStore), so a write is never committed after its
    # caller's deadline: in autocommit the statement would be its own commit, and a
    # statement running in aiosqlite's thread does not stop when its caller does.
    sqlite_options = {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **sqlite_options, **options)
    else:  # an in-memory database lives in its one connection, which SQLAlchemy keeps
        engine = create_async_engine(url, **sqlite_options, hide_parameters=True)
    event.listen(engine.sync_engine, "handle_error", _reduce_driver_error, insert=True)
    busy_timeout = round(timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the writer; busy_timeout makes a concurrent
        # writer wait (up to `timeout`) instead of failing with "database is locked";
        # synchronous=FULL means an acknowledged write survives even a crash of the machine.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
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


def pool_figures(pool: Pool) -> tuple[int, int]:
    """A pool's bound and the connections checked out of it.

    :func:`create_engine` gives every file or server database a ``QueuePool``; an
    in-memory database keeps its one connection in a pool without a bound, counted as
    a pool of one.
    """
    if isinstance(pool, QueuePool):
        return pool.size(), pool.checkedout()
    return 1, 0


class _OpenConnections:
    """How many database connections a pool holds open right now.

    Counted from the pool's ``connect`` and ``close`` events: a ``QueuePool``'s own
    ``checkedin()`` counts the places in its queue, and one whose connection was
    invalidated (a timeout, a dead server) stays there, empty, until it is next used.
    """

    def __init__(self, pool: Pool) -> None:
        self.count = 0
        event.listen(pool, "connect", self._opened)
        event.listen(pool, "close", self._closed)

    def _opened(self, *_: Any) -> None:
        self.count += 1

    def _closed(self, *_: Any) -> None:
        self.count -= 1


class UserStore:
    """The four operations the proxy offers, each one transaction.

    Each waits for the database at most ``timeout`` seconds in all (the free
    connection, connecting, every statement, the commit), or less if the caller's
    deadline comes first; a connection cut off by that bound is closed, never reused.
    A database that refuses connections, drops them or does not answer in time
    becomes a 503 or 504 problem naming the database, never a hang or a bare 500.
    """

    def __init__(self, engine: AsyncEngine, timeout: float = 1.0) -> None:
        self._engine = engine
        self._timeout = timeout
        self._open = _OpenConnections(engine.pool)
        # Each of db's writes is one statement in a transaction of its own; on SQLite,
        # whose reads run in autocommit, the transaction is asked for here. A write
        # of several statements would go inside the same `_connect(write=True)`.
        autocommit = engine.dialect.name == "sqlite"
        self._writer = (
            engine.execution_options(isolation_level="SERIALIZABLE") if autocommit else engine
        )

    @asynccontextmanager
    async def _connect(
        self, write: bool = False, bound: float | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for one operation; for a write, in a transaction that
        commits on exit, unless the caller's deadline has passed by then."""
        budget = deadline.budget(self._timeout if bound is None else bound)
        if budget <= 0:
            raise HTTPError(504, "the caller gave up before db reached the database")
        connected = False
        try:
            async with asyncio.timeout(budget):
                async with (self._writer if write else self._engine).connect() as connection:
                    connected = True
                    try:
                        if not write:
                            yield connection
                            return
                        async with connection.begin():
                            yield connection
                            # The last moment a write can be withdrawn: rolled back here,
                            # it is stored only if someone still waits for the answer.
                            deadline.ensure_time_left(
                                "the caller gave up: the write was rolled back, not committed"
                            )
                    except (asyncio.CancelledError, TimeoutError):
                        # Cut off mid-conversation, the connection is in an unknown
                        # state (a statement or a commit may still be on its way): it
                        # is closed, and its place in the pool opens a new one.
                        await connection.invalidate()
                        raise
        except exc.TimeoutError:  # the pool: no connection came free in time
            raise HTTPError(503, "the database is busy: no free connection") from None
        except TimeoutError:
            if not connected and self._pool_exhausted():
                raise HTTPError(503, "the database is busy: no free connection") from None
            raise HTTPError(504, f"the database did not answer within {budget:.3g} s") from None
        except OSError:  # refused, reset, unreachable: while connecting
            raise HTTPError(503, "the database is unavailable") from None
        except exc.DBAPIError as error:
            if error.connection_invalidated or isinstance(error, exc.OperationalError):
                raise HTTPError(503, "the database is unavailable") from None
            if isinstance(error, exc.IntegrityError):
                raise  # the operation's to answer (a taken e-mail address is a 409)
            # Its text is the driver's class and code only (_reduce_driver_error).
            raise HTTPError(500, f"the database refused the statement: {error.orig}") from None

    def _pool_exhausted(self) -> bool:
        size, checked_out = pool_figures(self._engine.pool)
        return checked_out >= size

    async def check_ready(self, bound: float = 0.5) -> None:
        """Raise a 503 unless a pooled connection answers a query within ``bound`` seconds.

        For the readiness probe: a saturated pool, or a database that does not answer,
        means this db should get no traffic for now. The check query makes no span.
        """
        with untraced():
            try:
                async with self._connect(bound=min(bound, self._timeout)) as connection:
                    await connection.execute(_PING)
            except HTTPError as error:
                raise HTTPError(503, f"not ready: {error.detail}") from None

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
        """The connection pool as ``/health`` shows it: its bound, the connections
        open to the database and those a request holds."""
        size, checked_out = pool_figures(self._engine.pool)
        return {"pool_size": size, "open": self._open.count, "in_use": checked_out}

    async def create(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user; 409 when the e-mail address is taken (even by a racing insert)."""
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        values = {"name": name, "email": email, "created_at": created_at}
        try:
            async with self._connect(write=True) as connection:
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
        async with self._connect(write=True) as connection:
            result = await connection.execute(_DELETE, {"user_id": user_id})
        if result.rowcount == 0:
            raise HTTPError(404, f"user {user_id} does not exist")
