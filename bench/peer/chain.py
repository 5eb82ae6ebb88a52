"""The peer: the same gateway -> users -> db chain on FastAPI + uvicorn + OpenTelemetry.

What a team would write with the usual stack: pydantic bodies, a shared
``httpx.AsyncClient``, SQLAlchemy async on aiosqlite with the same table and pragmas,
and the standard auto-instrumentation (FastAPI, httpx, SQLAlchemy) exporting with a
``BatchSpanProcessor`` and the OTLP gRPC exporter (SDK defaults except the schedule
delay, 200 ms like the Cello services). ``OTEL_SDK_DISABLED=true`` runs it with no
instrumentation at all: the untraced baseline. ``BENCH_ROLE=echo`` is the one-service
peer of ``bench/apps/echo.py``: one async GET returning a small dict.

Usage: ``BENCH_ROLE=gateway|users|db|echo PORT=... DOWNSTREAM_URL=... python -m bench.peer.chain``
(db reads ``DATABASE_URL``). Only for the benchmark; not part of the project.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.schema import COLUMNS, apply_pragmas, metadata, users

TRACED = os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true"
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


class NewUser(BaseModel):
    name: str
    email: str


def forwarding_app(prefix: str) -> FastAPI:
    """gateway (``/api/users``) or users (``/users``): validate, then call downstream."""
    client: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client["http"] = httpx.AsyncClient(base_url=os.environ["DOWNSTREAM_URL"], timeout=4.0)
        yield
        await client["http"].aclose()

    app = FastAPI(lifespan=lifespan)

    def relay(answer: httpx.Response) -> JSONResponse:
        return JSONResponse(answer.json(), status_code=answer.status_code)

    @app.post(prefix, status_code=201)
    async def create_user(user: NewUser) -> JSONResponse:
        name, email = user.name.strip(), user.email.strip().lower()
        if prefix == "/users" and not (0 < len(name) <= 100 and EMAIL.fullmatch(email)):
            raise HTTPException(422, "the user is not valid")
        return relay(await client["http"].post("/users", json={"name": name, "email": email}))

    @app.get(prefix + "/{user_id}")
    async def get_user(user_id: int) -> JSONResponse:
        return relay(await client["http"].get(f"/users/{user_id}"))

    return app


def db_app(engine: AsyncEngine) -> FastAPI:
    """db: the users table over HTTP."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    columns = COLUMNS

    @app.post("/users", status_code=201)
    async def create_user(user: NewUser) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        statement = insert(users).values(name=user.name, email=user.email, created_at=now)
        try:
            async with engine.begin() as connection:
                row = (await connection.execute(statement.returning(*columns))).one()
        except IntegrityError:
            raise HTTPException(409, "a user with this email already exists") from None
        return dict(row._mapping)

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, Any]:
        async with engine.connect() as connection:
            query = select(*columns).where(users.c.id == user_id)
            row = (await connection.execute(query)).first()
        if row is None:
            raise HTTPException(404, f"user {user_id} does not exist")
        return dict(row._mapping)

    return app


def make_engine() -> AsyncEngine:
    """The same SQLite settings as the Cello db service: WAL, busy timeout, FULL sync."""
    engine = create_async_engine(os.environ["DATABASE_URL"])
    event.listen(engine.sync_engine, "connect", apply_pragmas)
    return engine


def echo_app() -> FastAPI:
    """The one-service peer: ``GET /`` answers a small dict."""
    app = FastAPI()

    @app.get("/")
    async def echo() -> dict[str, str]:
        return {"message": "hello", "path": "/"}

    return app


def instrument(app: FastAPI, engine: AsyncEngine | None) -> None:
    """The standard OpenTelemetry setup, as its documentation shows it."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create())  # reads OTEL_SERVICE_NAME
    processor = BatchSpanProcessor(OTLPSpanExporter(insecure=True), schedule_delay_millis=200)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    FastAPIInstrumentor.instrument_app(app)
    HTTPXClientInstrumentor().instrument()
    if engine is not None:
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)


def main() -> None:
    """Build the app for ``BENCH_ROLE`` and serve it with one uvicorn worker."""
    role = os.environ["BENCH_ROLE"]
    engine = make_engine() if role == "db" else None
    prefix = "/api/users" if role == "gateway" else "/users"
    if role == "echo":
        app = echo_app()
    else:
        app = db_app(engine) if engine is not None else forwarding_app(prefix)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if TRACED:
        instrument(app, engine)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning",
                access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
