"""SQLAlchemy's per-query cost, one public setting at a time, against aiosqlite alone.

``python -m bench.sql DATABASE`` reads user 1 of a seeded SQLite file many times per
variant and prints one JSON object. Every variant runs in this one process; the rounds
go round-robin over them, so the machine's drift hits all alike. Per variant and round:

- at 1 concurrent query: process CPU µs per query (the event loop's thread and the
  driver's threads together), wall µs per query, and the voluntary context switches
  per query, of the whole process and of the event loop's thread alone (it sleeps once
  per trip to a driver thread);
- at 16 concurrent queries (16 pooled connections, as db's pool): queries/s and CPU µs
  per query.

Once per variant, untimed, the trips to aiosqlite's thread per query are counted: the
engine gets its driver connections from ``create_async_engine(async_creator=...)``, a
public parameter, and each is wrapped so that every awaited aiosqlite call (each one is
a job for its thread) adds one. The variants are SQLAlchemy settings as a user would
pass them, db's own store (``db.database``) as db runs it, and aiosqlite alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import re
import resource
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bench.schema import GET, GET_SQL, apply_pragmas, seed

#: db's pool: DATABASE_POOL_SIZE's default, no overflow, 1 s to wait for a connection.
POOL_SIZE, POOL_TIMEOUT = 16, 1.0
POOL: dict[str, Any] = {"pool_size": POOL_SIZE, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT}
CONCURRENCY = 16
PARAMS = {"user_id": 1}

Query = Callable[[], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to read the user: a driver call, db's store, or db's engine with a change."""

    what: str
    engine: dict[str, Any] = dataclasses.field(default_factory=dict)  # create_async_engine
    execution: dict[str, Any] = dataclasses.field(default_factory=dict)  # execution_options
    held: bool = False  # one connection per worker for the whole batch, not one per query
    stream: bool = False  # AsyncConnection.stream() (a server-side cursor)
    driver: str = ""  # "fetchall" or "cursor": aiosqlite alone
    db: bool = False  # db's own UserStore.get on db's own engine


#: What db's create_engine adds for SQLite besides the pool: reads run in autocommit,
#: and no rollback is sent as a connection returns (on aiosqlite a trip to the
#: connection's thread of its own). Every variant below but ``a transaction per read``
#: starts from these.
DB_SETTINGS: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "skip_autocommit_rollback": True}

VARIANTS: dict[str, Variant] = {
    "aiosqlite": Variant("aiosqlite alone: execute_fetchall, one trip", driver="fetchall"),
    "aiosqlite, 4 calls": Variant(
        "aiosqlite alone, as SQLAlchemy's adaptor calls it: cursor, execute, fetchall, close",
        driver="cursor",
    ),
    "db today": Variant("db's UserStore.get on db's create_engine (services/db)", db=True),
    "db's copy": Variant("db's engine settings, the bench's copy"),
    "a transaction per read": Variant(
        "SQLAlchemy's default: each read in a transaction, rolled back on return",
        engine={"isolation_level": "SERIALIZABLE", "skip_autocommit_rollback": False},
    ),
    "rollback on return": Variant(
        "autocommit, but the pool's reset-on-return rollback kept (skip_autocommit_rollback=False)",
        engine={"skip_autocommit_rollback": False},
    ),
    "held connection": Variant(
        "one connection per request: a worker keeps its connection across queries", held=True
    ),
    "pre-ping": Variant(
        "pool_pre_ping=True (db uses it on PostgreSQL)", engine={"pool_pre_ping": True}
    ),
    "lifo": Variant("pool_use_lifo=True", engine={"pool_use_lifo": True}),
    "stream_results": Variant(
        "stream_results=True: AsyncConnection.stream, a server-side cursor",
        execution={"stream_results": True},
        stream=True,
    ),
    "no compiled cache": Variant(
        "compiled_cache=None: the statement compiled per query", execution={"compiled_cache": None}
    ),
}


class Counted:
    """An aiosqlite connection or cursor that counts the calls it sends to its thread.

    Every public aiosqlite call that is awaited is one job on the connection's thread;
    a cursor it returns is wrapped too. Everything else is passed through unchanged.
    """

    def __init__(self, inner: Any, trips: list[int]) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_trips", trips)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name == "_tx":  # the adaptor queues its isolation-level changes there itself
            return _CountedQueue(value, self._trips)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            return self._counted(result) if hasattr(result, "__await__") else result

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    async def _counted(self, awaitable: Awaitable[Any]) -> Any:
        self._trips[0] += 1
        result = await awaitable
        return Counted(result, self._trips) if isinstance(result, aiosqlite.Cursor) else result


class _CountedQueue:
    """A connection's job queue that counts what is put on it."""

    def __init__(self, queue: Any, trips: list[int]) -> None:
        self._queue, self._trips = queue, trips

    def put_nowait(self, item: Any) -> None:
        self._trips[0] += 1
        self._queue.put_nowait(item)


def engine(path: Path, trips: list[int] | None = None, **options: Any) -> AsyncEngine:
    """db's SQLite engine (pool, settings, pragmas), ``options`` on top; counted if asked."""
    kwargs: dict[str, Any] = {**POOL, **DB_SETTINGS, **options}
    if trips is not None:
        counter = trips

        async def creator() -> Any:
            return Counted(await aiosqlite.connect(path), counter)

        kwargs["async_creator"] = creator
    created = create_async_engine(f"sqlite+aiosqlite:///{path}", **kwargs)
    event.listen(created.sync_engine, "connect", apply_pragmas)
    return created


class Runner:
    """A variant set up: ``session(i)`` is worker ``i``'s context, yielding its query."""

    def __init__(self, variant: Variant, path: Path, trips: list[int] | None = None) -> None:
        self.variant, self.path, self.trips = variant, path, trips
        self.engine: AsyncEngine | None = None
        self.drivers: list[Any] = []
        self.store: Any = None

    async def start(self) -> None:
        v = self.variant
        if v.driver:
            for _ in range(CONCURRENCY):
                connection = await aiosqlite.connect(self.path)
                self.drivers.append(Counted(connection, self.trips) if self.trips else connection)
        elif v.db:
            from db.database import UserStore, create_engine  # db as it runs today

            self.engine = create_engine(f"sqlite+aiosqlite:///{self.path}", POOL_SIZE)
            self.store = UserStore(self.engine, POOL_TIMEOUT)
            await self.store.warm_up()
        else:
            self.engine = engine(self.path, self.trips, **v.engine)
        # Open every connection and compile the statement before anything is measured.
        await asyncio.gather(*(self._warm(i) for i in range(CONCURRENCY)))

    async def _warm(self, i: int) -> None:
        async with self.session(i) as query:
            for _ in range(20):
                await query()

    @asynccontextmanager
    async def session(self, i: int) -> AsyncIterator[Query]:
        v = self.variant
        if v.driver:
            connection = self.drivers[i]
            yield (
                (lambda: _fetchall(connection))
                if v.driver == "fetchall"
                else (lambda: _cursor(connection))
            )
        elif v.db:
            yield lambda: self.store.get(1)
        else:
            assert self.engine is not None
            target = self.engine.execution_options(**v.execution) if v.execution else self.engine
            if v.held:
                async with target.connect() as held:
                    yield lambda: _read(held, v.stream)
            else:
                yield lambda: read_once(target, v.stream)

    async def close(self) -> None:
        for connection in self.drivers:
            await connection.close()
        if self.engine is not None:
            await self.engine.dispose()


async def _fetchall(connection: Any) -> Any:
    rows = await connection.execute_fetchall(GET_SQL, (1,))
    return next(iter(rows))[0]


async def _cursor(connection: Any) -> Any:
    cursor = await connection.cursor()
    await cursor.execute(GET_SQL, (1,))
    rows = await cursor.fetchall()
    await cursor.close()
    return rows[0][0]


async def _read(connection: AsyncConnection, stream: bool) -> dict[str, Any]:
    if stream:
        row = await (await connection.stream(GET, PARAMS)).first()
    else:
        row = (await connection.execute(GET, PARAMS)).first()
    assert row is not None
    return dict(row._mapping)


async def read_once(engine: AsyncEngine, stream: bool = False) -> dict[str, Any]:
    """Check a connection out, read user 1, return the connection: db's read."""
    async with engine.connect() as connection:
        return await _read(connection, stream)


def _loop_thread_voluntary() -> int:
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    line = next(ln for ln in status.splitlines() if ln.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


async def batch(runner: Runner, n: int, concurrency: int) -> dict[str, float]:
    """``n`` reads by ``concurrency`` workers: CPU, wall time and switches per query."""
    per = max(1, n // concurrency)

    async def worker(i: int) -> None:
        async with runner.session(i) as query:
            for _ in range(per):
                await query()

    gc.collect()
    usage0, loop0 = resource.getrusage(resource.RUSAGE_SELF), _loop_thread_voluntary()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    usage1, loop1 = resource.getrusage(resource.RUSAGE_SELF), _loop_thread_voluntary()
    total = per * concurrency
    return {
        "cpu_us": cpu * 1e6 / total,
        "wall_us": wall * 1e6 / total,
        "qps": total / wall,
        "voluntary_cs": (usage1.ru_nvcsw - usage0.ru_nvcsw) / total,
        "involuntary_cs": (usage1.ru_nivcsw - usage0.ru_nivcsw) / total,
        "loop_voluntary_cs": (loop1 - loop0) / total,
    }


async def count_trips(variant: Variant, path: Path, n: int = 200) -> float | None:
    """Trips to aiosqlite's thread per query, counted.

    db's own engine cannot be handed a creator, so its count is that of the bench's
    copy of its settings (the same pool and pragmas, ``engine()``).
    """
    if variant.db:
        variant = Variant("the bench's copy of db's engine")
    trips = [0]
    runner = Runner(variant, path, trips)
    await runner.start()
    try:
        trips[0] = 0
        async with runner.session(0) as query:
            for _ in range(n):
                await query()
        return trips[0] / n
    finally:
        await runner.close()


async def measure(path: Path, rounds: int, n1: int, n16: int) -> dict[str, Any]:
    """Every variant, ``rounds`` times round-robin; the counts once each."""
    results: dict[str, Any] = {}
    runners: dict[str, Runner] = {}
    try:
        only = os.environ.get("BENCH_SQL_ONLY", "")  # a regular expression, for development
        for name, variant in VARIANTS.items():
            if not re.search(only, name):
                continue
            try:
                runner = Runner(variant, path)
                await runner.start()
            except ImportError as error:  # db's code moved: say so, measure the rest
                results[name] = {"what": variant.what, "skipped": f"{error}"}
                continue
            runners[name] = runner
            results[name] = {"what": variant.what, "c1": [], "c16": []}
        for _ in range(rounds):
            for name, runner in runners.items():
                results[name]["c1"].append(await batch(runner, n1, 1))
                results[name]["c16"].append(await batch(runner, n16, CONCURRENCY))
    finally:
        for runner in runners.values():
            await runner.close()
    for name in runners:
        results[name]["round_trips"] = await count_trips(VARIANTS[name], path)
        for mode in ("c1", "c16"):
            rows = results[name][mode]
            results[name][mode + "_median"] = {
                k: statistics.median(r[k] for r in rows) for k in rows[0]
            }
    return results


def main() -> None:
    path = Path(sys.argv[1])
    seed(path)
    quick = os.environ.get("BENCH_QUICK") == "1"
    # Many short rounds: a burst of other work on the machine hits one round of a few
    # variants, and the medians (and per-round differences) leave it out.
    rounds = int(os.environ.get("BENCH_SQL_ROUNDS", 5 if quick else 30))
    n1, n16 = 100, 320
    started = time.monotonic()
    variants = asyncio.run(measure(path, rounds, n1, n16))
    settings = {
        "rounds": rounds,
        "queries_c1": n1,
        "queries_c16": n16,
        "concurrency": CONCURRENCY,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps({"settings": settings, "variants": variants}))


if __name__ == "__main__":
    main()
