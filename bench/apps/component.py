"""One hop's parts, one at a time: a bare Cello app that does a single thing per request.

Run as ``python bench/apps/component.py`` with ``PORT`` and ``BENCH_COMPONENT`` set:

- ``bare``: an async handler returning a small dict (Cello alone);
- ``aiosqlite``: one ``SELECT`` of a user by id on one long-lived aiosqlite connection;
- ``sqlalchemy``: the same read through SQLAlchemy, exactly as the db service does it
  (``db.database``: its engine, its pragmas, ``UserStore.get``);
- ``httpx``: one ``GET`` to ``DOWNSTREAM_URL`` with one ``AsyncClient`` held for the life
  of the app; pointed at another component, it makes a hop of a bare chain.

No tracing, no request ids, no project code but db's queries: the floor each hop stands
on. ``/rusage`` answers the kernel's counters for the whole process (exited threads
included), which ``/proc/PID/status`` alone does not give.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import cello
import httpx

from db.database import UserStore, create_engine, create_schema

READ = "SELECT id, name, email, created_at FROM users WHERE id = ?"


def seed(path: Path) -> None:
    """The db service's table with one user (id 1), written with the stdlib driver."""

    async def schema() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await create_schema(engine)
        await engine.dispose()

    asyncio.run(schema())
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT OR IGNORE INTO users (id, name, email, created_at) VALUES (1, ?, ?, ?)",
            ("Ada", "ada@example.com", "2026-01-01T00:00:00.000Z"),
        )


def create_app(component: str) -> cello.App:
    """A bare Cello app whose ``GET /`` does ``component`` once."""
    app = cello.App()
    state: dict[str, Any] = {}
    database = Path(os.environ.get("BENCH_DATABASE", "component.db"))
    downstream = os.environ.get("DOWNSTREAM_URL", "")

    @app.on_event("startup")
    async def startup() -> None:
        if component == "aiosqlite":
            state["db"] = await aiosqlite.connect(database)
        elif component == "sqlalchemy":
            state["store"] = UserStore(create_engine(f"sqlite+aiosqlite:///{database}"))
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
        seed(Path(os.environ.get("BENCH_DATABASE", "component.db")))
    create_app(component).run(
        host="127.0.0.1", port=int(os.environ["PORT"]), workers=1, debug=False, logs=False
    )
