"""One hop's parts, one at a time: a bare Cello app that does a single thing per request.

Run as ``python bench/apps/component.py`` with ``PORT`` and ``BENCH_COMPONENT`` set
(and ``DATABASE_URL``, a SQLite file, for the two that read):

- ``bare``: an async handler returning a small dict (Cello alone);
- ``aiosqlite``: one ``SELECT`` of a user by id on one long-lived aiosqlite connection;
- ``sqlalchemy``: the same read through SQLAlchemy, exactly as the db service does it
  (its settings from the environment, ``db.database``'s engine, pool and warm-up,
  ``UserStore.get``);
- ``httpx``: one ``GET`` to ``DOWNSTREAM_URL`` with one ``AsyncClient`` held for the life
  of the app; pointed at another component, it makes a hop of a bare chain.

No tracing, no request ids, no project code but db's queries: the floor each hop stands
on. ``/rusage`` answers the kernel's counters for the whole process (exited threads
included), which ``/proc/PID/status`` alone does not give.
"""

from __future__ import annotations

import os
import resource
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import cello
import httpx
from sqlalchemy.engine import make_url

from db.database import UserStore, create_engine, prepare_database
from db.settings import Settings

DEFAULT_URL = "sqlite+aiosqlite:///component.db"
READ = "SELECT id, name, email, created_at FROM users WHERE id = ?"


def _database() -> Path:
    """The SQLite file of ``DATABASE_URL`` (db's own variable)."""
    return Path(make_url(os.environ.get("DATABASE_URL", DEFAULT_URL)).database or "")


def seed() -> None:
    """db's table, made by db's own start-up code, with one user (id 1)."""
    prepare_database(os.environ.get("DATABASE_URL", DEFAULT_URL))
    with sqlite3.connect(_database()) as connection:
        connection.execute(
            "INSERT OR IGNORE INTO users (id, name, email, created_at) VALUES (1, ?, ?, ?)",
            ("Ada", "ada@example.com", "2026-01-01T00:00:00.000Z"),
        )


def create_app(component: str) -> cello.App:
    """A bare Cello app whose ``GET /`` does ``component`` once."""
    app = cello.App()
    state: dict[str, Any] = {}
    database = _database()
    downstream = os.environ.get("DOWNSTREAM_URL", "")

    @app.on_event("startup")
    async def startup() -> None:
        if component == "aiosqlite":
            state["db"] = await aiosqlite.connect(database)
        elif component == "sqlalchemy":
            settings = Settings.from_env()
            engine = create_engine(
                settings.database_url, settings.pool_size, settings.database_timeout
            )
            state["store"] = UserStore(engine, settings.database_timeout)
            await state["store"].warm_up()  # as db's start-up: the pool open, reads compiled
        elif component == "httpx":
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            state["client"] = httpx.AsyncClient(base_url=downstream, limits=limits)

    @app.get("/")
    async def one(request: Any) -> dict[str, Any]:
        if component == "aiosqlite":
            rows = await state["db"].execute_fetchall(READ, (1,))
            return {"id": next(iter(rows))[0]}
        if component == "sqlalchemy":
            return {"id": (await state["store"].get(1))["id"]}
        if component == "httpx":
            answer = await state["client"].get("/")
            return {"downstream": answer.status_code}
        return {"message": "hello", "path": request.path}

    @app.get("/health")
    def health(request: Any) -> dict[str, Any]:
        return {"status": "ok", "component": component}

    @app.get("/rusage")
    def rusage(request: Any) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"voluntary": usage.ru_nvcsw, "involuntary": usage.ru_nivcsw}

    return app


if __name__ == "__main__":
    component = os.environ["BENCH_COMPONENT"]
    if component in ("aiosqlite", "sqlalchemy"):
        seed()
    create_app(component).run(
        host="127.0.0.1", port=int(os.environ["PORT"]), workers=1, debug=False, logs=False
    )
