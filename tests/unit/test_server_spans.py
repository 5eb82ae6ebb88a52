"""The SERVER span of each request: name, kind, attributes, parent, status, sampling, env."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import pytest
from cello import Request, Response
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from cello_problem import HTTPError
from cello_telemetry import request_id

TRACE_HEX = "0af7651916cd43dd8448eb211c80319c"
PARENT_HEX = "b7ad6b7169203331"
SAMPLED_PARENT = f"00-{TRACE_HEX}-{PARENT_HEX}-01"
UNSAMPLED_PARENT = f"00-{TRACE_HEX}-{PARENT_HEX}-00"
SECRET = "password=hunter2 at db.internal:5432"


def get(path: str = "/items/7", *, headers: dict[str, str] | None = None, **kw: Any) -> Request:
    return Request("GET", path, params=kw.pop("params", {"id": "7"}), headers=headers or {}, **kw)


def only(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def traceparent_of(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def response_traceparent(response: Response) -> tuple[str, str, str, str]:
    version, trace_hex, span_hex, flags = response.headers["traceparent"].split("-")
    return version, trace_hex, span_hex, flags


def problem(response: Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/problem+json"
    body = json.loads(bytes(response.body()))
    assert isinstance(body, dict)
    return body


@pytest.fixture
def items(make_app):
    """An app with sync and async routes covering each outcome."""
    traced = make_app("items-service", service_version="2.3.4")
    app = traced.app

    @app.get("/items/{id}")
    def get_item(request: Request) -> dict[str, Any]:
        return {"id": int(request.params["id"])}

    @app.get("/async/{id}")
    async def get_async(request: Request) -> dict[str, Any]:
        return {"id": int(request.params["id"])}

    @app.post("/items/{id}")
    def post_item(request: Request) -> Response:
        return Response.json({"id": 42}, status=201)

    @app.get("/missing/{id}")
    def missing(request: Request) -> None:
        raise HTTPError(404, "no such item")

    @app.get("/unavailable")
    async def unavailable(request: Request) -> None:
        raise HTTPError(503, "db-service is unavailable")

    @app.get("/boom")
    def boom(request: Request) -> None:
        raise RuntimeError(SECRET)

    @app.get("/async-boom")
    async def async_boom(request: Request) -> None:
        raise RuntimeError(SECRET)

    @app.get("/health")
    def health(request: Request) -> dict[str, str]:
        return {"status": "ok"}

    return traced


# -- name, kind and attributes -------------------------------------------------------------------


def test_one_server_span_named_after_the_route_template(items) -> None:
    response = items.call("GET", "/items/{id}", get("/items/7"))

    assert response.status == 200
    assert json.loads(bytes(response.body())) == {"id": 7}
    span = only(items.spans())
    assert span.name == "GET /items/{id}"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET


def test_server_span_carries_the_documented_attribute_table(items) -> None:
    body = b'{"name":"widget"}'
    request = Request(
        "POST",
        "/items/42",
        params={"id": "42"},
        query={"verbose": "1"},
        headers={
            "host": "api.example:8080",
            "content-type": "application/json",
            "content-length": str(len(body)),
            "x-request-id": "req-abc-123",
        },
        body=body,
    )

    response = items.call("POST", "/items/{id}", request)

    assert response.status == 201
    span = only(items.spans())
    assert dict(span.attributes or {}) == {
        "http.method": "POST",
        "http.route": "/items/{id}",
        "http.url": "http://api.example:8080/items/42?verbose=REDACTED",
        "http.status_code": 201,
        "http.request_content_length": 17,
        "http.response_content_length": len(b'{"id":42}'),
        "net.host.name": "api.example",
        "request.id": "req-abc-123",
    }


def test_request_content_length_is_omitted_when_not_a_number(items) -> None:
    items.call("GET", "/items/{id}", get(headers={"host": "h", "content-length": "-5"}))

    attributes = dict(only(items.spans()).attributes or {})
    assert "http.request_content_length" not in attributes
    assert attributes["net.host.name"] == "h"
    assert attributes["http.url"] == "http://h/items/7"


CANARY = "canary-5e1f"


@pytest.mark.parametrize(
    ("opt_in", "names"),
    [("", ("http.url",)), ("http", ("url.query",)), ("http/dup", ("http.url", "url.query"))],
)
def test_no_query_value_reaches_the_span_in_any_semconv_mode(
    make_app, monkeypatch, opt_in: str, names: tuple[str, ...]
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in)
    traced = make_app()

    @traced.app.get("/items")
    def items(request: Request) -> dict[str, int]:
        return {"ok": 1}

    query = {"token": CANARY, "limit": "5", f"{CANARY}@example.com": "1", "e": f"{CANARY}@x.io"}
    traced.call("GET", "/items", Request("GET", "/items", query=query, headers={"host": "h"}))

    span = only(traced.spans())
    attributes = dict(span.attributes or {})
    shown = "REDACTED=REDACTED&e=REDACTED&limit=REDACTED&token=REDACTED"
    for name in names:
        assert attributes[name].endswith(shown), (name, attributes[name])
    exported = json.dumps([span.name, attributes, [e.attributes for e in span.events]])
    assert CANARY not in exported


@pytest.mark.parametrize("host", ["[::1]:8000", "[::1]"])
def test_net_host_name_of_an_ipv6_host_header(items, host: str) -> None:
    items.call("GET", "/items/{id}", get(headers={"host": host}))

    attributes = dict(only(items.spans()).attributes or {})
    assert attributes["net.host.name"] in ("::1", "[::1]")


def test_resource_names_the_service_its_version_and_host(items) -> None:
    items.call("GET", "/items/{id}", get())

    resource = dict(only(items.spans()).resource.attributes)
    assert resource["service.name"] == "items-service"
    assert resource["service.version"] == "2.3.4"
    assert resource["host.name"] == socket.gethostname()


@pytest.mark.parametrize("route", ["/items/{id}", "/async/{id}"])
def test_sync_and_async_handlers_are_both_traced(items, route: str) -> None:
    path = route.replace("{id}", "9")

    response = items.call("GET", route, get(path, params={"id": "9"}))

    assert response.status == 200
    assert json.loads(bytes(response.body())) == {"id": 9}
    span = only(items.spans())
    assert span.name == f"GET {route}"
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 200


def test_handler_runs_inside_the_server_span_with_incoming_baggage(make_app) -> None:
    traced = make_app()
    seen: dict[str, Any] = {}

    @traced.app.get("/probe")
    def probe(request: Request) -> dict[str, str]:
        seen["span_id"] = trace.get_current_span().get_span_context().span_id
        seen["baggage"] = dict(baggage.get_all())
        seen["request_id"] = request_id.current_request_id()
        return {}

    traced.call(
        "GET",
        "/probe",
        Request(
            "GET",
            "/probe",
            headers={"traceparent": SAMPLED_PARENT, "baggage": "tenant=acme", "x-request-id": "r1"},
        ),
    )

    span = only(traced.spans())
    assert span.context is not None
    assert seen == {
        "span_id": span.context.span_id,
        "baggage": {"tenant": "acme"},
        "request_id": "r1",
    }
    # The request's context is detached again afterwards.
    assert not trace.get_current_span().get_span_context().is_valid
    assert request_id.current_request_id() is None


def test_record_baggage_records_only_the_named_entries(make_app) -> None:
    traced = make_app()
    traced.app.record_baggage("demo.session", "absent")

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    headers = {"traceparent": SAMPLED_PARENT, "baggage": "demo.session=s-42,user.email=a%40b.io"}
    traced.call("GET", "/x", Request("GET", "/x", headers=headers))

    attributes = dict(only(traced.spans()).attributes or {})
    baggage_attributes = {k: v for k, v in attributes.items() if k.startswith("baggage.")}
    assert baggage_attributes == {"baggage.demo.session": "s-42"}


# -- parent and the response traceparent -----------------------------------------------------


def test_valid_incoming_traceparent_is_continued(items) -> None:
    headers = {"traceparent": SAMPLED_PARENT, "tracestate": "vendor=abc"}

    response = items.call("GET", "/items/{id}", get(headers=headers))

    span = only(items.spans())
    assert span.context is not None
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_HEX
    assert f"{span.parent.span_id:016x}" == PARENT_HEX
    assert span.parent.is_remote is True
    assert span.context.span_id != int(PARENT_HEX, 16)
    assert span.context.trace_state.get("vendor") == "abc"
    assert response_traceparent(response) == ("00", TRACE_HEX, *traceparent_of(span)[1:], "01")


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        f"00-{'0' * 32}-{PARENT_HEX}-01",
        f"00-{TRACE_HEX}-{'0' * 16}-01",
        f"ff-{TRACE_HEX}-{PARENT_HEX}-01",
        f"00-{TRACE_HEX.upper()}-{PARENT_HEX}-01",
        f"00-{TRACE_HEX}-{PARENT_HEX}-01-extra",
        "",
    ],
)
def test_invalid_incoming_traceparent_starts_a_new_trace(items, bad: str) -> None:
    response = items.call("GET", "/items/{id}", get(headers={"traceparent": bad}))

    assert response.status == 200
    span = only(items.spans())
    assert span.parent is None
    trace_hex, span_hex = traceparent_of(span)
    assert trace_hex != TRACE_HEX
    assert response_traceparent(response)[1:3] == (trace_hex, span_hex)


@pytest.mark.parametrize("incoming", [SAMPLED_PARENT, UNSAMPLED_PARENT], ids=["01", "00"])
def test_untrusted_traceparent_is_a_link_on_a_new_sampled_root(items, incoming: str) -> None:
    items.app.trust_incoming_trace(False)
    headers = {"traceparent": incoming, "tracestate": "vendor=abc", "baggage": "k=v"}
    seen: dict[str, str | None] = {}

    @items.app.get("/baggage")
    def read_baggage(request: Request) -> dict[str, str]:
        value = baggage.get_baggage("k")
        seen["k"] = value if isinstance(value, str) else None
        return {}

    response = items.call("GET", "/baggage", get("/baggage", headers=headers))

    span = only(items.spans())
    assert span.parent is None
    trace_hex, span_hex = traceparent_of(span)
    assert trace_hex != TRACE_HEX
    assert len(span.context.trace_state) == 0
    (link,) = span.links
    assert (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") == (
        TRACE_HEX,
        PARENT_HEX,
    )
    assert link.context.is_remote is True
    assert response_traceparent(response) == ("00", trace_hex, span_hex, "03")
    assert seen == {"k": "v"}  # baggage is taken either way


def test_untrusted_sampled_traceparent_does_not_override_the_own_sampler(make_app) -> None:
    traced = make_app(sampling_rate=0.0)
    traced.app.trust_incoming_trace(False)

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    response = traced.call("GET", "/x", get("/x", headers={"traceparent": SAMPLED_PARENT}))

    assert traced.spans() == []
    assert response_traceparent(response)[1] != TRACE_HEX


def test_untrusted_invalid_traceparent_gets_no_link(items) -> None:
    items.app.trust_incoming_trace(False)
    items.call("GET", "/items/{id}", get(headers={"traceparent": f"00-{'0' * 32}-{PARENT_HEX}-01"}))

    assert only(items.spans()).links == ()


def test_trusted_is_the_default_and_can_be_set_back(items) -> None:
    items.app.trust_incoming_trace(False).trust_incoming_trace(True)
    items.call("GET", "/items/{id}", get(headers={"traceparent": SAMPLED_PARENT}))

    span = only(items.spans())
    assert traceparent_of(span)[0] == TRACE_HEX
    assert span.links == ()


@pytest.mark.parametrize(
    ("route", "path", "status"),
    [
        ("/items/{id}", "/items/7", 200),
        ("/missing/{id}", "/missing/7", 404),
        ("/unavailable", "/unavailable", 503),
        ("/boom", "/boom", 500),
        ("/async-boom", "/async-boom", 500),
    ],
)
def test_response_traceparent_names_the_exported_server_span(
    items, route: str, path: str, status: int
) -> None:
    response = items.call("GET", route, get(path, headers={"traceparent": SAMPLED_PARENT}))

    assert response.status == status
    span = only(items.spans())
    version, trace_hex, span_hex, flags = response_traceparent(response)
    assert (version, flags) == ("00", "01")
    assert (trace_hex, span_hex) == traceparent_of(span)
    assert trace_hex == TRACE_HEX


# -- status and errors ---------------------------------------------------------------------------


def test_4xx_leaves_the_status_unset(items) -> None:
    response = items.call("GET", "/missing/{id}", get("/missing/7"))

    assert response.status == 404
    assert problem(response) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such item",
        "instance": "/missing/7",
    }
    span = only(items.spans())
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 404
    assert list(span.events) == []


def test_http_error_5xx_marks_the_span_as_an_error(items) -> None:
    response = items.call("GET", "/unavailable", get("/unavailable"))

    assert response.status == 503
    assert problem(response)["detail"] == "db-service is unavailable"
    span = only(items.spans())
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "503 Service Unavailable: db-service is unavailable"
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 503


@pytest.mark.parametrize("route", ["/boom", "/async-boom"])
def test_unexpected_exception_is_a_500_problem_and_an_error_span(items, route: str) -> None:
    response = items.call("GET", route, get(route))

    assert response.status == 500
    body = problem(response)
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "an unexpected error occurred; the request id is in X-Request-ID",
        "instance": route,
    }
    assert b"hunter2" not in bytes(response.body())
    span = only(items.spans())
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 500
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert events[0].attributes is not None
    assert events[0].attributes["exception.type"] == "RuntimeError"
    assert events[0].attributes["exception.message"] == SECRET


def test_unserializable_handler_result_becomes_a_500_problem(make_app) -> None:
    traced = make_app()

    @traced.app.get("/odd")
    def odd(request: Request) -> dict[str, Any]:
        return {"tags": {"a", "b"}}  # a set is not JSON

    response = traced.call("GET", "/odd", Request("GET", "/odd"))

    assert response.status == 500
    assert problem(response)["status"] == 500
    span = only(traced.spans())
    assert span.status.status_code is StatusCode.ERROR


def test_unserializable_handler_result_does_not_leak_the_span_or_request_id(make_app) -> None:
    traced = make_app()

    @traced.app.get("/odd")
    def odd(request: Request) -> dict[str, Any]:
        return {"tags": {"a", "b"}}

    with contextlib.suppress(ValueError):
        traced.call("GET", "/odd", Request("GET", "/odd", headers={"x-request-id": "leak-1"}))

    # The span must be ended (exported) and the request's context detached either way.
    assert [s.name for s in traced.spans()] == ["GET /odd"]
    assert not trace.get_current_span().get_span_context().is_valid
    assert request_id.current_request_id() is None


# -- excluded paths --------------------------------------------------------------------------


def test_excluded_path_makes_no_span_but_gets_a_request_id(items) -> None:
    response = items.call("GET", "/health", Request("GET", "/health"))

    assert response.status == 200
    assert items.spans() == []
    assert "traceparent" not in response.headers
    assert len(response.headers["X-Request-ID"]) == 32


# -- sampling ----------------------------------------------------------------------------------


def test_sampling_rate_zero_exports_nothing_but_answers(make_app) -> None:
    traced = make_app(sampling_rate=0.0)

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    responses = [traced.call("GET", "/x", Request("GET", "/x")) for _ in range(20)]

    assert [r.status for r in responses] == [200] * 20
    assert traced.spans() == []
    for response in responses:
        flags = int(response_traceparent(response)[3], 16)
        assert flags & 0x01 == 0  # not sampled
        assert response_traceparent(response)[3] in ("00", "02")  # 02: random trace-id flag


def test_sampling_rate_one_exports_every_request(make_app) -> None:
    traced = make_app(sampling_rate=1.0)

    @traced.app.get("/x")
    async def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    for _ in range(25):
        traced.call("GET", "/x", Request("GET", "/x"))

    spans = traced.spans()
    assert len(spans) == 25
    assert len({s.context.trace_id for s in spans if s.context is not None}) == 25


def test_unsampled_incoming_parent_is_followed(items) -> None:
    response = items.call("GET", "/items/{id}", get(headers={"traceparent": UNSAMPLED_PARENT}))

    assert response.status == 200
    assert items.spans() == []
    version, trace_hex, span_hex, flags = response_traceparent(response)
    assert (version, trace_hex, flags) == ("00", TRACE_HEX, "00")
    assert span_hex != PARENT_HEX


def test_sampled_incoming_parent_is_followed_even_at_ratio_zero(make_app) -> None:
    traced = make_app(sampling_rate=0.0)

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    traced.call("GET", "/x", Request("GET", "/x", headers={"traceparent": SAMPLED_PARENT}))

    span = only(traced.spans())
    assert span.parent is not None
    assert traceparent_of(span)[0] == TRACE_HEX
    assert f"{span.parent.span_id:016x}" == PARENT_HEX


# -- environment overrides -------------------------------------------------------------------


def test_otel_sdk_disabled_means_no_spans_and_no_traceparent(make_app, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    traced = make_app()

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    response = traced.call(
        "GET", "/x", Request("GET", "/x", headers={"traceparent": SAMPLED_PARENT})
    )

    assert response.status == 200
    assert json.loads(bytes(response.body())) == {"ok": 1}
    assert "traceparent" not in response.headers
    assert len(response.headers["X-Request-ID"]) == 32
    assert traced.app.telemetry is not None
    assert traced.app.telemetry.enabled is False
    assert traced.app.telemetry.provider is None
    assert traced.exporter.get_finished_spans() == ()


def test_otel_service_name_overrides_the_code(make_app, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed-by-operator")
    traced = make_app("name-in-code")

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    traced.call("GET", "/x", Request("GET", "/x"))

    assert only(traced.spans()).resource.attributes["service.name"] == "renamed-by-operator"


def test_otel_resource_attributes_are_added(make_app, monkeypatch) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=core,service.name=ignored"
    )
    traced = make_app("name-in-code")

    @traced.app.get("/x")
    def x(request: Request) -> dict[str, int]:
        return {"ok": 1}

    traced.call("GET", "/x", Request("GET", "/x"))

    resource = only(traced.spans()).resource.attributes
    assert resource["deployment.environment"] == "staging"
    assert resource["team"] == "core"
    # service.name is settled by OTEL_SERVICE_NAME or the code, not by the attribute list.
    assert resource["service.name"] == "name-in-code"


# -- every way Cello registers a handler -----------------------------------------------------


def registered(make_app) -> Any:
    """An app with a handler registered in each of Cello's ways."""
    import cello

    traced = make_app("routes-service")
    app = traced.app

    @app.route("/many", methods=["get", "POST"])
    def many(request: Request) -> dict[str, str]:
        return {"method": request.method}

    @app.head("/items")
    def head_items(request: Request) -> Response:
        return Response.no_content()

    @app.options("/items")
    async def options_items(request: Request) -> Response:
        return Response.no_content()

    @app.put("/items/{id}")
    def put_item(request: Request) -> dict[str, str]:
        return {"put": request.params["id"]}

    @app.patch("/items/{id}")
    def patch_item(request: Request) -> dict[str, str]:
        return {"patch": request.params["id"]}

    @app.delete("/items/{id}")
    def delete_item(request: Request) -> None:
        return None

    api = cello.Blueprint("/api")
    inner = cello.Blueprint("/v2")

    @api.get("/things/{id}")
    async def thing(request: Request) -> dict[str, str]:
        return {"id": request.params["id"]}

    @inner.post("/orders")
    def order(request: Request) -> Response:
        return Response.json({"ok": True}, status=201)

    api.register(inner)
    app.register_blueprint(api)
    return traced


@pytest.mark.parametrize(
    ("method", "route", "path", "status"),
    [
        ("GET", "/many", "/many", 200),
        ("POST", "/many", "/many", 200),
        ("HEAD", "/items", "/items", 204),
        ("OPTIONS", "/items", "/items", 204),
        ("PUT", "/items/{id}", "/items/3", 200),
        ("PATCH", "/items/{id}", "/items/3", 200),
        ("DELETE", "/items/{id}", "/items/3", 204),
        ("GET", "/api/things/{id}", "/api/things/3", 200),
        ("POST", "/api/v2/orders", "/api/v2/orders", 201),
    ],
)
def test_every_way_of_registering_a_handler_gets_a_server_span(
    make_app, method: str, route: str, path: str, status: int
) -> None:
    traced = registered(make_app)
    request = Request(method, path, params={"id": "3"} if "{id}" in route else {}, headers={})

    response = traced.call(method, route, request)

    assert int(response.status) == status
    span = only(traced.spans())
    assert span.name == f"{method} {route}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == route
    assert span.attributes["http.status_code"] == status
    assert "traceparent" in response.headers
