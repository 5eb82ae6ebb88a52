"""The trace trees one request through gateway -> users -> db must produce."""

from __future__ import annotations

from typing import Any

GATEWAY, USERS, DB = "api-gateway", "user-service", "db-proxy"

#: The attribute table of Cello's tracing docs, on every SERVER span.
SERVER_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.route",
        "http.url",
        "http.status_code",
        "http.response_content_length",
        "net.host.name",
        "request.id",
    }
)


def expected_tree(
    method: str,
    public_route: str,
    route: str,
    sql: tuple[str, ...] = (),
    db_children: tuple[Any, ...] | None = None,
) -> tuple[str, str, str, tuple[Any, ...]]:
    """The exact shape of one request's trace (see ``support.traces.Node.shape``).

    ``route`` is the route users and db share (``/users/{id}``); ``sql`` the labels of
    db's SQL spans, which always include ``connect`` for the pooled connection (on
    SQLite and on PostgreSQL alike).
    ``db_children`` replaces those SQL spans when db does something else.
    """
    if db_children is None:
        db_children = tuple(
            (DB, "CLIENT", name, ()) for name in sorted((*sql, "connect"), key=str.lower)
        )
    db_server = (DB, "SERVER", f"{method} {route}", db_children)
    users_client = (USERS, "CLIENT", f"{method} {route}", (db_server,))
    users_server = (USERS, "SERVER", f"{method} {route}", (users_client,))
    gateway_client = (GATEWAY, "CLIENT", f"{method} {route}", (users_server,))
    return (GATEWAY, "SERVER", f"{method} {public_route}", (gateway_client,))


def span_count(tree: tuple[str, str, str, tuple[Any, ...]]) -> int:
    """How many spans an expected tree has."""
    return 1 + sum(span_count(child) for child in tree[3])


#: ``GET /api/users/{id}`` when db fails it on purpose (the flaky-db scenario).
FLAKY_DB_TREE = expected_tree(
    "GET",
    "/api/users/{id}",
    "/users/{id}",
    db_children=((DB, "INTERNAL", "demo: injected failure", ()),),
)
