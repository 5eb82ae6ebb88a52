"""users' HTTP API: validate, then store through db."""

from __future__ import annotations

from typing import Any

from cello import Request, Response

from cello_problem import path_id, query_int, read_json_object
from cello_telemetry import App

from .client import DbClient
from .rules import validate_new_user

_FIELDS = frozenset({"name", "email"})


def register(app: App, db: DbClient) -> None:
    """Add users' routes to ``app``."""

    @app.post("/users")
    async def create_user(request: Request) -> Response:
        """Create a user after checking the business rules."""
        name, email = validate_new_user(read_json_object(request, _FIELDS))
        return Response.json(await db.create({"name": name, "email": email}), status=201)

    @app.get("/users/{id}")
    async def get_user(request: Request) -> dict[str, Any]:
        """One user by id."""
        return await db.get(path_id(request.params))

    @app.get("/users")
    async def list_users(request: Request) -> dict[str, Any]:
        """A page of users."""
        query = request.query
        limit = query_int(query, "limit", default=20, minimum=1, maximum=100)
        offset = query_int(query, "offset", default=0, minimum=0, maximum=1_000_000)
        return await db.list(limit, offset)

    @app.delete("/users/{id}")
    async def delete_user(request: Request) -> Response:
        """Delete a user by id."""
        await db.delete(path_id(request.params))
        return Response.no_content()
