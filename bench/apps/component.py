"""One hop's parts, one at a time: a bare Cello app that does a single thing per request.

Run as ``python bench/apps/component.py`` with ``PORT`` and ``BENCH_COMPONENT`` set
(and ``DATABASE_URL``, a SQLite file, for the ones that read):

- ``bare``: an async handler returning a small dict (Cello alone: the floor);
- ``httpx``: one ``GET`` to ``DOWNSTREAM_URL`` with one ``httpx.AsyncClient`` held for
  the life of the app (httpx's own transport); pointed at another component, it makes a
  hop of a bare chain;
- ``httpx-aiohttp``: the same client on ``httpx_aiohttp.AiohttpTransport``;
- ``aiohttp``: the same ``GET`` with one ``aiohttp.ClientSession`` alone;
- ``aiosqlite``: one ``SELECT`` of a user by id on one long-lived aiosqlite connection;
- ``db today``: the same read through db's own ``UserStore.get`` on db's own engine.

No tracing, no request ids: the floor each hop stands on. ``/rusage`` answers the
kernel's counters for the whole process (exited threads included), which
``/proc/PID/status`` alone does not give.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import cello
import httpx
import httpx_aiohttp
from sqlalchemy.engine import make_url

from bench.schema import GET_SQL, seed
from bench.sql import POOL_SIZE, POOL_TIMEOUT

LIMIT = 64  # connections to the downstream: above wrk's 16, so none waits for one


def _database() -> Path:
    """The SQLite file of ``DATABASE_URL`` (db's own variable)."""
    return Path(make_url(os.environ["DATABASE_URL"]).database or "")


def create_app(component: str) -> cello.App:
    """A bare Cello app whose ``GET /`` does ``component`` once."""
    app = cello.App()
    state: dict[str, Any] = {}
    downstream = os.environ.get("DOWNSTREAM_URL", "")

    @app.on_event("startup")
    async def startup() -> None:
        limits = httpx.Limits(max_connections=LIMIT, max_keepalive_connections=LIMIT)
        if component == "httpx":
            state["client"] = httpx.AsyncClient(base_url=downstream, limits=limits)
        elif component == "httpx-aiohttp":
            transport = httpx_aiohttp.AiohttpTransport(limits=limits)
            state["client"] = httpx.AsyncClient(base_url=downstream, transport=transport)
        elif component == "aiohttp":
            connector = aiohttp.TCPConnector(limit=LIMIT)
            state["session"] = aiohttp.ClientSession(downstream, connector=connector)
        elif component == "aiosqlite":
            state["db"] = await aiosqlite.connect(_database())
        elif component == "db today":
            from db.database import UserStore, create_engine  # db as it runs today

            url = os.environ["DATABASE_URL"]
            state["store"] = UserStore(create_engine(url, POOL_SIZE), POOL_TIMEOUT)
            await state["store"].warm_up()  # as db's start-up: the pool open, reads compiled

    @app.get("/")
    async def one(request: Any) -> dict[str, Any]:
        if component in ("httpx", "httpx-aiohttp"):
            answer = await state["client"].get("/")
            return {"downstream": answer.status_code}
        if component == "aiohttp":
            async with state["session"].get("/") as response:
                await response.read()
                return {"downstream": response.status}
        if component == "aiosqlite":
            rows = await state["db"].execute_fetchall(GET_SQL, (1,))
            return {"id": next(iter(rows))[0]}
        if component == "db today":
            return {"id": (await state["store"].get(1))["id"]}
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
    if "DATABASE_URL" in os.environ:
        seed(_database())
    create_app(component).run(
        host="127.0.0.1", port=int(os.environ["PORT"]), workers=1, debug=False, logs=False
    )
