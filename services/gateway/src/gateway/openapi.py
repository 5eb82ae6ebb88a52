"""The gateway's OpenAPI document, written by hand and served at ``GET /openapi.json``.

Cello's ``enable_openapi`` documents every route as "200, any object": no status codes,
no schemas, no problem+json errors, so nothing could be checked against it. This
document says exactly what the public API accepts and answers, and the fault tests
fuzz the running gateway against it (tests/faults/test_openapi_fuzz.py).
"""

from __future__ import annotations

from typing import Any

from cello_problem import MAX_BODY_BYTES, MAX_ID
from cello_telemetry import App

# The limits the users service enforces on a new user, as the public API documents them.
NAME_MAX = 100
EMAIL_MAX = 254

PROBLEM = "application/problem+json"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"traceparent": {"$ref": "#/components/headers/traceparent"}},
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _ok(description: str, schema: str | None, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {
            "traceparent": {"$ref": "#/components/headers/traceparent"},
            "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"},
            **headers,
        },
    }
    if schema is not None:
        response["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        }
    return response


# Every operation may meet a dead (503), slow (504) or broken (502) users service.
_UPSTREAM = {
    "502": _problem("users (or db behind it) failed"),
    "503": _problem("users (or db behind it) is unavailable"),
    "504": _problem("users (or db behind it) did not answer in time"),
}
_TRACE_HEADERS = [
    {"$ref": "#/components/parameters/traceparent"},
    {"$ref": "#/components/parameters/X-Request-ID"},
]
_ID = {"$ref": "#/components/parameters/id"}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Cello tracing demo: api-gateway",
        "version": "0.1.0",
        "description": (
            "Users, stored through user-service and db-proxy. Every response carries a "
            "W3C `traceparent` and an `X-Request-ID`; errors are RFC 9457 problem+json."
        ),
    },
    "paths": {
        "/api/users": {
            "post": {
                "operationId": "createUser",
                "summary": "Create a user",
                "parameters": _TRACE_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewUser"}}
                    },
                },
                "responses": {
                    "201": _ok(
                        "the stored user",
                        "User",
                        Location={
                            "description": "the new user's URL",
                            "schema": {"type": "string", "pattern": "^/api/users/[0-9]+$"},
                        },
                    ),
                    "400": _problem("the body is not a JSON object"),
                    "409": _problem("a user with this e-mail address exists"),
                    "413": _problem(f"the body is over {MAX_BODY_BYTES} bytes"),
                    "415": _problem("the body is not declared as application/json"),
                    "422": _problem("unknown members, or a name or e-mail address not valid"),
                    **_UPSTREAM,
                },
            },
            "get": {
                "operationId": "listUsers",
                "summary": "A page of users, in id order",
                "parameters": [
                    *_TRACE_HEADERS,
                    {
                        "name": "limit",
                        "in": "query",
                        "description": "page size; empty means the default",
                        "allowEmptyValue": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "description": "users to skip; empty means the default",
                        "allowEmptyValue": True,
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 1_000_000,
                            "default": 0,
                        },
                    },
                ],
                "responses": {
                    "200": _ok("the page", "UserPage"),
                    "400": _problem("limit or offset out of range"),
                    **_UPSTREAM,
                },
            },
        },
        "/api/users/{id}": {
            "get": {
                "operationId": "getUser",
                "summary": "One user",
                "parameters": [_ID, *_TRACE_HEADERS],
                "responses": {
                    "200": _ok("the user", "User"),
                    "400": _problem("the id is not a positive 64-bit integer"),
                    "404": _problem("no user has this id"),
                    **_UPSTREAM,
                },
            },
            "delete": {
                "operationId": "deleteUser",
                "summary": "Delete a user",
                "parameters": [_ID, *_TRACE_HEADERS],
                "responses": {
                    "204": _ok("deleted", None),
                    "400": _problem("the id is not a positive 64-bit integer"),
                    "404": _problem("no user has this id"),
                    **_UPSTREAM,
                },
            },
        },
    },
    "components": {
        "parameters": {
            "id": {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID},
            },
            "traceparent": {
                "name": "traceparent",
                "in": "header",
                "description": "W3C Trace Context; anything invalid starts a new trace",
                "schema": {"type": "string"},
            },
            "X-Request-ID": {
                "name": "X-Request-ID",
                "in": "header",
                "description": "kept when 1-128 of [A-Za-z0-9._:-], else replaced",
                "schema": {"type": "string"},
            },
        },
        "headers": {
            "traceparent": {
                "description": "the trace this request is part of (W3C Trace Context)",
                "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$"},
            },
            "X-Request-ID": {
                "description": "the request id, the client's or a generated one",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            },
        },
        "schemas": {
            "NewUser": {
                "type": "object",
                "required": ["name", "email"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
                    "email": {"type": "string", "format": "email", "maxLength": EMAIL_MAX},
                },
            },
            "User": {
                "type": "object",
                "required": ["id", "name", "email", "created_at"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
            "UserPage": {
                "type": "object",
                "required": ["items", "limit", "offset", "total"],
                "additionalProperties": False,
                "properties": {
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "total": {"type": "integer", "minimum": 0},
                },
            },
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details",
                "required": ["type", "title", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def add_openapi(app: App) -> None:
    """Serve :data:`DOCUMENT` at ``GET /openapi.json``."""

    @app.get("/openapi.json")
    def openapi(request: Any) -> dict[str, Any]:
        """The OpenAPI 3 document of the public API."""
        return DOCUMENT
