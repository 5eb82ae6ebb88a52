"""db's HTTP API: CRUD on users. Business rules live in the users service."""

from __future__ import annotations

from typing import Any

from cello import Request, Response

from cello_problem import HTTPError, path_id, query_int, read_json_object
from cello_telemetry import App

from .database import UserStore
from .scenarios import N_PLUS_ONE, Scenarios

_FIELDS = frozenset({"name", "email"})
_MAX_LENGTH = {"name": 100, "email": 254}


def stored_fields(body: dict[str, Any]) -> tuple[str, str]:
    """The ``(name, email)`` of a new row, or 422 listing every field the table cannot take.

    What makes a user valid is the users service's business; db checks only what its
    columns can store on either database: a string of 1 to the column's length, without
    NUL (which PostgreSQL text refuses).
    """
    errors = []
    for field, limit in _MAX_LENGTH.items():
        value = body.get(field)
        if not isinstance(value, str) or not 0 < len(value) <= limit or "\x00" in value:
            message = f"a string of 1 to {limit} characters, without NUL"
            errors.append({"field": field, "message": message})
    if errors:
        raise HTTPError(422, "the row cannot be stored", extra={"errors": errors})
    return body["name"], body["email"]


def register(app: App, store: UserStore, scenarios: Scenarios) -> None:
    """Add db's routes to ``app``; each one first lets ``scenarios`` disturb it."""

    @app.post("/users")
    async def create_user(request: Request) -> Response:
        """Insert a user."""
        await scenarios.disturb()
        name, email = stored_fields(read_json_object(request, _FIELDS))
        return Response.json(await store.create(name, email), status=201)

    @app.get("/users/{id}")
    async def get_user(request: Request) -> dict[str, Any]:
        """One user by id."""
        await scenarios.disturb()
        return await store.get(path_id(request.params))

    @app.get("/users")
    async def list_users(request: Request) -> dict[str, Any]:
        """A page of users."""
        await scenarios.disturb()
        query = request.query
        limit = query_int(query, "limit", default=20, minimum=1, maximum=100)
        offset = query_int(query, "offset", default=0, minimum=0, maximum=1_000_000)
        if scenarios.requested() == N_PLUS_ONE:
            return await store.list_one_by_one(limit, offset)
        return await store.list(limit, offset)

    @app.delete("/users/{id}")
    async def delete_user(request: Request) -> Response:
        """Delete a user by id."""
        await scenarios.disturb()
        await store.delete(path_id(request.params))
        return Response.no_content()
