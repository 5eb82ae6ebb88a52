"""The public API under ``/api``; users does the validating and storing."""

from __future__ import annotations

from typing import Any

from cello import Request, Response

from cello_problem import path_id, query_int, read_json_object
from cello_telemetry import App

from .client import UsersClient

_FIELDS = frozenset({"name", "email"})


def register(app: App, users: UsersClient) -> None:
    """Add the public routes to ``app``."""

    @app.post("/api/users")
    async def create_user(request: Request) -> Response:
        """Create a user from ``{"name", "email"}``; 201 with the stored user."""
        body = read_json_object(request, _FIELDS)
        user = await users.create(body)
        response = Response.json(user, status=201)
        response.set_header("Location", f"/api/users/{user['id']}")
        return response

    @app.get("/api/users/{id}")
    async def get_user(request: Request) -> dict[str, Any]:
        """One user by id, or 404."""
        return await users.get(path_id(request.params))

    @app.get("/api/users")
    async def list_users(request: Request) -> dict[str, Any]:
        """A page of users: ``?limit=`` (1-100, default 20) and ``?offset=``."""
        query = request.query
        limit = query_int(query, "limit", default=20, minimum=1, maximum=100)
        offset = query_int(query, "offset", default=0, minimum=0, maximum=1_000_000)
        return await users.list(limit, offset)

    @app.delete("/api/users/{id}")
    async def delete_user(request: Request) -> Response:
        """Delete a user by id; 204, or 404."""
        await users.delete(path_id(request.params))
        return Response.no_content()
