"""Cello's route options (``guards=``, ``body=``) run inside the SERVER span.

These drive the edge through ``handler_for``; tests/integration/test_edge_dispatch.py
proves the same through Cello's own dispatch on a running server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cello
import pytest
from cello import Request, Response
from cello.guards import Authenticated, ForbiddenError

BODY_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class Item:
    name: str
    quantity: int


def problem(response: Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(bytes(response.body()))
    assert isinstance(body, dict)
    return body


def refuse(request: Request) -> bool:
    return False


def crash(request: Request) -> bool:
    raise KeyError("password=hunter2")


def denied_with_reason(request: Request) -> bool:
    raise ForbiddenError("Requires one of roles: admin")


@pytest.mark.parametrize(
    ("guard", "status", "detail"),
    [
        pytest.param(refuse, 403, "Access denied", id="returns-false"),
        pytest.param(Authenticated(), 401, "Authentication required", id="no-user"),
        pytest.param(denied_with_reason, 403, "Requires one of roles: admin", id="reason"),
        pytest.param(crash, 403, None, id="crashed-guard-shows-no-internals"),
    ],
)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_guard_refusal_is_a_problem_inside_the_span(
    make_app, guard: Any, status: int, detail: str | None, is_async: bool
) -> None:
    traced = make_app()
    reached: list[bool] = []

    if is_async:

        @traced.app.get("/guarded", guards=[guard])
        async def guarded_async(request: Request) -> dict[str, bool]:
            reached.append(True)
            return {"ok": True}

    else:

        @traced.app.get("/guarded", guards=[guard])
        def guarded(request: Request) -> dict[str, bool]:
            reached.append(True)
            return {"ok": True}

    response = traced.call("GET", "/guarded", Request("GET", "/guarded", headers={}))

    assert int(response.status) == status
    body = problem(response)
    assert body["status"] == status
    assert body.get("detail") == detail
    assert reached == []
    (span,) = traced.spans()
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == status
    assert response.headers["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"
    assert response.headers["X-Request-ID"] == span.attributes["request.id"]
    assert "hunter2" not in repr(span.events) + repr(span.attributes)


def test_a_passing_guard_lets_the_handler_answer(make_app) -> None:
    traced = make_app()

    @traced.app.get("/open", guards=[lambda request: True])
    def open_route(request: Request) -> dict[str, bool]:
        return {"ok": True}

    response = traced.call("GET", "/open", Request("GET", "/open", headers={}))

    assert int(response.status) == 200
    assert json.loads(bytes(response.body())) == {"ok": True}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_valid_body_is_passed_to_the_handler_as_the_model(make_app, is_async: bool) -> None:
    traced = make_app()
    if is_async:

        @traced.app.post("/items", body=Item)
        async def create_async(request: Request, item: Item) -> dict[str, Any]:
            return {"name": item.name, "quantity": item.quantity}

    else:

        @traced.app.post("/items", body=Item)
        def create(request: Request, item: Item) -> dict[str, Any]:
            return {"name": item.name, "quantity": item.quantity}

    body = b'{"name": "cello", "quantity": 2}'
    request = Request("POST", "/items", headers=BODY_HEADERS, body=body)
    response = traced.call("POST", "/items", request)

    assert int(response.status) == 200, bytes(response.body())
    assert json.loads(bytes(response.body())) == {"name": "cello", "quantity": 2}
    (span,) = traced.spans()
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 200


@pytest.mark.parametrize(
    "body", [b'{"name": "cello"}', b'{"name": "cello", "quantity": 2, "extra": 1}', b"{nope"]
)
def test_a_refused_body_is_a_400_problem_inside_the_span(make_app, body: bytes) -> None:
    traced = make_app()
    reached: list[bool] = []

    @traced.app.post("/items", body=Item)
    def create(request: Request, item: Item) -> dict[str, Any]:
        reached.append(True)
        return {}

    request = Request("POST", "/items", headers=BODY_HEADERS, body=body)
    response = traced.call("POST", "/items", request)

    assert int(response.status) == 400
    found = problem(response)
    assert (found["status"], found["detail"]) == (400, "the body is not valid")
    assert found["errors"]
    assert all(set(error) == {"field", "message"} for error in found["errors"])
    assert reached == []
    (span,) = traced.spans()
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 400
    assert "traceparent" in response.headers
    assert "X-Request-ID" in response.headers


def test_a_blueprint_guard_refusal_is_a_problem_inside_the_span(make_app) -> None:
    traced = make_app()
    admin = cello.Blueprint("/admin")

    @admin.get("/stats", guards=[refuse])
    def stats(request: Request) -> dict[str, int]:
        return {"users": 1}

    traced.app.register_blueprint(admin)
    response = traced.call("GET", "/admin/stats", Request("GET", "/admin/stats", headers={}))

    assert int(response.status) == 403
    assert problem(response)["status"] == 403
    (span,) = traced.spans()
    assert span.name == "GET /admin/stats"


def test_a_method_cello_cannot_route_is_refused_at_registration(make_app) -> None:
    app = make_app().app

    with pytest.raises(ValueError, match="Cello routes no TRACE requests"):
        app.route("/debug", methods=["GET", "TRACE"])


def test_an_app_wide_guard_is_refused_because_cello_checks_it_outside_the_span(make_app) -> None:
    app = make_app().app

    with pytest.raises(ValueError, match=r"guards=\[\.\.\.\]"):
        app.add_guard(refuse)
