"""The users table and the queries on it: SQLAlchemy 2 async on SQLite or PostgreSQL.

Every statement is built with SQLAlchemy Core, so values always travel as bound
parameters; no SQL is ever assembled from strings. The same code runs on both
databases: only :func:`create_engine` knows which one it talks to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
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
from sqlalchemy.engine import ExceptionContext, make_url
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


def _reduce_driver_error(context: ExceptionContext) -> None:
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
    # Reads run in autocommit and skip the ROLLBACK each connection would otherwise get
    # on its way back to the pool: 18 % less CPU per read on SQLite in the benchmark,
    # and on PostgreSQL one round trip less, and a pre-ping without a transaction to
    # roll back (a frozen server would hold that ROLLBACK, and the connection, for as
    # long as it is frozen). Writes take a transaction of their own (UserStore), so a
    # write is never committed after its caller's deadline: in autocommit the statement
    # would be its own commit, and neither driver stops a statement already sent.
    common: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "skip_autocommit_rollback": True,
        "hide_parameters": True,
    }
    options = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": timeout, **common}
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
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3's own `timeout` is SQLite's busy timeout: a concurrent writer waits
        # (up to `timeout`) for the lock instead of failing with "database is locked".
        engine = create_async_engine(url, connect_args={"timeout": timeout}, **options)
    else:  # an in-memory database lives in its one connection, which SQLAlchemy keeps
        engine = create_async_engine(url, **common)
    event.listen(engine.sync_engine, "handle_error", _reduce_driver_error, insert=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the writer; synchronous=FULL means an
        # acknowledged write survives even a crash of the machine.
        cursor.execute("PRAGMA journal_mode=WAL")
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
        self.count = pool.checkedin() + pool.checkedout() if isinstance(pool, QueuePool) else 0
        event.listen(pool, "connect", self._opened)
        event.listen(pool, "close", self._closed)

    def _opened(self, *_: Any) -> None:
        self.count += 1

    def _closed(self, *_: Any) -> None:
        self.count -= 1


async def _abandon(task: asyncio.Task[Any], interval: float = 0.05) -> None:
    """Cancel ``task`` until it ends, so its connection is closed at once.

    The first cancellation ends the wait for the database, and SQLAlchemy invalidates
    the connection; closing it politely then waits for the server again (asyncpg
    first asks a frozen server to cancel the statement), and SQLAlchemy answers a
    cancellation there by closing the socket without a goodbye.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=interval)


class UserStore:
    """The four operations the proxy offers, each one transaction.

    Each waits for the database at most ``timeout`` seconds in all (the free
    connection, connecting, every statement, the commit), or less if the caller's
    deadline comes first. The operation runs in a task of its own: at the bound the
    answer goes out at once, and the task is cancelled, which invalidates (closes) its
    connection instead of returning it to the pool, however long the database takes
    to notice. A database that refuses connections, drops them or does not answer in
    time becomes a 503 or 504 problem naming the database, never a hang or a bare 500.
    """

    def __init__(self, engine: AsyncEngine, timeout: float = 1.0) -> None:
        self._engine = engine
        self._timeout = timeout
        self._open = _OpenConnections(engine.pool)
        # Each of db's writes is one statement in a transaction of its own (reads run
        # in autocommit: create_engine). A write of several statements goes into the
        # same `work`, so it commits, or not, as a whole.
        level = "SERIALIZABLE" if engine.dialect.name == "sqlite" else "READ COMMITTED"
        self._writer = engine.execution_options(isolation_level=level)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _run[T](
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool = False,
        bound: float | None = None,
    ) -> T:
        """``work`` on a pooled connection, within the budget; for a write, in a
        transaction that commits after it, unless the caller's deadline has passed."""
        budget = deadline.budget(self._timeout if bound is None else bound)
        if budget <= 0:
            raise HTTPError(504, "the caller gave up before db reached the database")
        task = asyncio.ensure_future(self._session(work, write))
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._forget)
        try:
            return await asyncio.wait_for(asyncio.shield(task), budget)
        except TimeoutError:
            abandon = asyncio.ensure_future(_abandon(task))
            self._tasks.add(abandon)
            abandon.add_done_callback(self._forget)
            raise HTTPError(504, f"the database did not answer within {budget:.3g} s") from None

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned task's error is not a warning

    async def _session[T](self, work: Callable[[AsyncConnection], Awaitable[T]], write: bool) -> T:
        try:
            async with (self._writer if write else self._engine).connect() as connection:
                try:
                    if not write:
                        return await work(connection)
                    async with connection.begin():
                        result = await work(connection)
                        # The last moment a write can be withdrawn: rolled back here,
                        # it is stored only if someone still waits for the answer.
                        deadline.ensure_time_left(
                            "the caller gave up: the write was rolled back, not committed"
                        )
                        return result
                except (asyncio.CancelledError, TimeoutError):
                    # Cut off mid-conversation, the connection is in an unknown state
                    # (a statement or a commit may still be on its way): closed, its
                    # place in the pool opens a new one when next needed.
                    await connection.invalidate()
                    raise
        except exc.TimeoutError:  # the pool: no connection came free in time
            raise HTTPError(503, "the database is busy: no free connection") from None
        except TimeoutError:  # connecting, or a statement (asyncpg's command_timeout)
            raise HTTPError(
                504, f"the database did not answer within {self._timeout:g} s"
            ) from None
        except OSError:  # refused, reset, unreachable: while connecting
            raise HTTPError(503, "the database is unavailable") from None
        except exc.DBAPIError as error:
            if error.connection_invalidated or isinstance(error, exc.OperationalError):
                raise HTTPError(503, "the database is unavailable") from None
            if isinstance(error, exc.IntegrityError):
                raise  # the operation's to answer (a taken e-mail address is a 409)
            # Its text is the driver's class and code only (_reduce_driver_error).
            raise HTTPError(500, f"the database refused the statement: {error.orig}") from None

    async def check_ready(self, bound: float = 0.5) -> None:
        """Raise a 503 unless a pooled connection answers a query within ``bound`` seconds.

        For the readiness probe: a saturated pool, or a database that does not answer,
        means this db should get no traffic for now. The check query makes no span.
        """

        async def ping(connection: AsyncConnection) -> None:
            await connection.execute(_PING)

        with untraced():
            try:
                await self._run(ping, bound=min(bound, self._timeout))
            except HTTPError as error:
                raise HTTPError(503, f"not ready: {error.detail}") from None

    async def warm_up(self) -> None:
        """Open every pooled connection and run each read statement once.

        For start-up, before the engine is instrumented: the first requests then find
        connections open and statements compiled, and the warm-up makes no spans.
        """
        pool_size = pool_figures(self._engine.pool)[0]

        async def read(connection: AsyncConnection) -> None:
            await connection.execute(_GET, {"user_id": 0})
            await connection.execute(_PAGE, {"limit": 1, "offset": 0})
            await connection.execute(_PAGE_IDS, {"limit": 1, "offset": 0})
            await connection.execute(_COUNT)

        await asyncio.gather(*(self._run(read) for _ in range(pool_size)))

    def pool_status(self) -> dict[str, int]:
        """The connection pool as ``/health`` shows it: its bound, the connections
        open to the database and those a request holds."""
        size, checked_out = pool_figures(self._engine.pool)
        return {"pool_size": size, "open": self._open.count, "in_use": checked_out}

    async def create(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user; 409 when the e-mail address is taken (even by a racing insert)."""
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        values = {"name": name, "email": email, "created_at": created_at}

        async def insert(connection: AsyncConnection) -> dict[str, Any]:
            return dict((await connection.execute(_INSERT, values)).one()._mapping)

        try:
            return await self._run(insert, write=True)
        except exc.IntegrityError:
            # The UNIQUE constraint, not a prior SELECT, decides: that is what makes
            # two concurrent creates with the same address give exactly one 201.
            raise HTTPError(409, "a user with this email already exists") from None

    async def get(self, user_id: int) -> dict[str, Any]:
        """One user, or 404."""

        async def read(connection: AsyncConnection) -> Any:
            return (await connection.execute(_GET, {"user_id": user_id})).first()

        row = await self._run(read)
        if row is None:
            raise HTTPError(404, f"user {user_id} does not exist")
        return dict(row._mapping)

    async def list(self, limit: int, offset: int) -> dict[str, Any]:
        """A page of users in id order, with the total count."""

        async def read(connection: AsyncConnection) -> dict[str, Any]:
            rows = (await connection.execute(_PAGE, {"limit": limit, "offset": offset})).all()
            total = (await connection.execute(_COUNT)).scalar_one()
            return {
                "items": [dict(row._mapping) for row in rows],
                "limit": limit,
                "offset": offset,
                "total": total,
            }

        return await self._run(read)

    async def list_one_by_one(self, limit: int, offset: int) -> dict[str, Any]:
        """The same page as :meth:`list`, read the N+1 way: the ids, then each user.

        The classic ORM mistake, on purpose: the ``n-plus-one`` demo scenario shows
        what it looks like in a trace, one SELECT span per user.
        """
        page = {"limit": limit, "offset": offset}

        async def read(connection: AsyncConnection) -> dict[str, Any]:
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

        return await self._run(read)

    async def delete(self, user_id: int) -> None:
        """Delete a user, or 404."""

        async def remove(connection: AsyncConnection) -> int:
            return (await connection.execute(_DELETE, {"user_id": user_id})).rowcount

        if await self._run(remove, write=True) == 0:
            raise HTTPError(404, f"user {user_id} does not exist")
