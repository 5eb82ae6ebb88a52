"""TracedClient: the CLIENT span, the headers it sends, and how answers map to HTTPError."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cello_problem import HTTPError
from cello_telemetry import TracedClient, request_id

PEER = "db-service"
BASE = "http://db:8002"
TIMED_OUT = f"{PEER} did not answer within 2 s"
Responder = Callable[[httpx.Request], httpx.Response]


class Harness:
    """A TracedClient on a mock transport, with spans in memory and requests recorded."""

    def __init__(self, responder: Responder, base_url: str = BASE, timeout: float = 2.0) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.requests: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return responder(request)

        self.client = TracedClient(
            base_url,
            peer_service=PEER,
            timeout=timeout,
            tracer_provider=self.provider,
            transport=httpx.MockTransport(handler),
        )

    def run(self, make: Callable[[TracedClient], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            try:
                return await make(self.client)
            finally:
                await self.client.aclose()

        return asyncio.run(main())

    def call(self, method: str = "GET", route: str = "/users/{id}", **kw: Any) -> Any:
        kw.setdefault("path_params", {"id": 7} if "{id}" in route else None)
        return self.run(lambda client: client.call(method, route, **kw))

    def error(self, **kw: Any) -> HTTPError:
        with pytest.raises(HTTPError) as info:
            self.call(**kw)
        return info.value

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def client_span(self) -> ReadableSpan:
        spans = [s for s in self.spans() if s.kind is SpanKind.CLIENT]
        assert len(spans) == 1
        return spans[0]


def json_answer(status: int, body: Any) -> Responder:
    return lambda request: httpx.Response(status, json=body)


def problem_answer(status: int, **members: Any) -> Responder:
    body = {"type": "about:blank", "status": status, **members}
    return lambda request: httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/problem+json"},
    )


def raising(exc: Exception) -> Responder:
    def responder(request: httpx.Request) -> httpx.Response:
        raise exc

    return responder


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def traceparent(span: ReadableSpan) -> str:
    """The traceparent naming ``span``: sampled, plus the random-trace-id flag if the SDK set it."""
    assert span.context is not None
    flags = int(span.context.trace_flags)
    assert flags & 0x01 == 0x01
    return "00-{}-{}-{:02x}".format(*hex_ids(span), flags & 0x03)


# -- the span and the propagated headers ------------------------------------------------------


def test_client_span_is_a_child_of_the_current_span() -> None:
    harness = Harness(json_answer(200, {"id": 7}))
    tracer = harness.provider.get_tracer("test")

    with tracer.start_as_current_span("parent") as parent:
        assert harness.call() == {"id": 7}

    span = harness.client_span()
    assert span.name == "GET /users/{id}"
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert hex_ids(span)[0] == f"{parent.get_span_context().trace_id:032x}"
    assert span.status.status_code is StatusCode.UNSET


def test_traceparent_names_the_client_span_not_its_parent() -> None:
    harness = Harness(json_answer(200, {}))
    tracer = harness.provider.get_tracer("test")

    with tracer.start_as_current_span("parent") as parent:
        harness.call()

    span = harness.client_span()
    (sent,) = harness.requests
    assert sent.headers["traceparent"] == traceparent(span)
    assert hex_ids(span)[1] != f"{parent.get_span_context().span_id:016x}"


def test_without_a_current_span_the_client_span_is_a_root() -> None:
    harness = Harness(json_answer(200, {}))

    harness.call()

    span = harness.client_span()
    assert span.parent is None
    assert harness.requests[0].headers["traceparent"] == traceparent(span)


def test_baggage_and_request_id_are_forwarded_when_set() -> None:
    harness = Harness(json_answer(200, {}))
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    rid_token = request_id.bind("req-42")
    try:
        harness.call()
    finally:
        request_id.unbind(rid_token)
        otel_context.detach(token)

    (sent,) = harness.requests
    assert sent.headers["baggage"] == "tenant=acme"
    assert sent.headers["x-request-id"] == "req-42"


def test_no_baggage_or_request_id_headers_when_unset() -> None:
    harness = Harness(json_answer(200, {}))

    harness.call()

    (sent,) = harness.requests
    assert "baggage" not in sent.headers
    assert "x-request-id" not in sent.headers
    assert "tracestate" not in sent.headers


def test_tracestate_of_the_parent_is_forwarded() -> None:
    harness = Harness(json_answer(200, {}))
    parent = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("vendor", "abc")]),
    )
    token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    try:
        harness.call()
    finally:
        otel_context.detach(token)

    sent = harness.requests[0]
    assert sent.headers["tracestate"] == "vendor=abc"
    assert sent.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("http://db:8002", "http://db:8002/users/7"),
        ("http://db", "http://db/users/7"),
        ("https://db.example", "https://db.example/users/7"),
    ],
)
def test_client_span_attributes(base_url: str, url: str) -> None:
    harness = Harness(json_answer(200, {}), base_url=base_url)

    harness.call()

    # The httpx instrumentation's attributes (old HTTP names by default), and ours.
    assert dict(harness.client_span().attributes or {}) == {
        "http.method": "GET",
        "http.url": url,
        "http.status_code": 200,
        "peer.service": PEER,
    }


def test_path_params_are_url_quoted() -> None:
    harness = Harness(json_answer(200, {}))

    harness.call(path_params={"id": "a/b c?d#e"})

    (sent,) = harness.requests
    assert sent.url.raw_path == b"/users/a%2Fb%20c%3Fd%23e"
    assert harness.client_span().name == "GET /users/{id}"
    assert harness.client_span().attributes["http.url"] == "http://db:8002/users/a%2Fb%20c%3Fd%23e"


def test_query_params_and_json_body_are_sent() -> None:
    harness = Harness(json_answer(201, {"id": 1}))

    result = harness.call("POST", "/users", params={"limit": 5}, json={"name": "Ada"})

    assert result == {"id": 1}
    (sent,) = harness.requests
    assert sent.method == "POST"
    assert sent.url.params["limit"] == "5"
    assert json.loads(sent.content) == {"name": "Ada"}
    assert harness.client_span().name == "POST /users"


# -- call(): answers ---------------------------------------------------------------------------


def test_2xx_returns_the_json_body() -> None:
    assert Harness(json_answer(200, {"users": [1, 2]})).call() == {"users": [1, 2]}


def test_204_returns_none() -> None:
    harness = Harness(lambda request: httpx.Response(204))

    assert harness.call("DELETE") is None
    assert harness.client_span().status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("status", "detail"), [(400, "bad id"), (404, "user 7 does not exist"), (409, "email taken")]
)
def test_4xx_problem_is_passed_on(status: int, detail: str) -> None:
    harness = Harness(problem_answer(status, title="x", detail=detail, secret="s3cret"))

    error = harness.error()

    assert (error.status, error.detail) == (status, detail)
    assert "secret" not in error.to_problem()
    span = harness.client_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == status


def test_422_keeps_the_errors_list() -> None:
    errors = [{"field": "email", "message": "a valid e-mail address"}]
    harness = Harness(problem_answer(422, detail="the user is not valid", errors=errors))

    error = harness.error(method="POST", route="/users", json={})

    assert error.status == 422
    assert error.to_problem()["errors"] == errors


@pytest.mark.parametrize(
    ("status", "members", "detail"),
    [
        (503, {"detail": "db is down"}, f"{PEER}: db is down"),
        (504, {"detail": "sqlite is slow"}, f"{PEER}: sqlite is slow"),
        (503, {}, f"{PEER}: Service Unavailable"),
        (504, {}, f"{PEER}: Gateway Timeout"),
    ],
)
def test_503_and_504_are_passed_on_naming_the_peer(
    status: int, members: dict[str, str], detail: str
) -> None:
    error = Harness(problem_answer(status, **members)).error()

    assert (error.status, error.detail) == (status, detail)


@pytest.mark.parametrize("status", [500, 501, 502])
def test_other_5xx_become_502(status: int) -> None:
    harness = Harness(problem_answer(status, detail="Traceback: secret internals"))

    error = harness.error()

    assert (error.status, error.detail) == (502, f"{PEER} failed with {status}")
    assert harness.client_span().status.status_code is StatusCode.ERROR


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(200, text="<html>ok</html>"),
        lambda request: httpx.Response(200, content=b""),
        lambda request: httpx.Response(200, content=b"\xff\xfe\xfd"),
        lambda request: httpx.Response(404, text="Not Found"),
    ],
    ids=["html", "empty", "binary", "plain-404"],
)
def test_unreadable_answer_is_502(answer: Responder) -> None:
    error = Harness(answer).error()

    assert (error.status, error.detail) == (502, f"{PEER} sent an unreadable answer")


# -- call(): transport failures ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "detail", "exc_type"),
    [
        (httpx.ConnectError("refused"), 503, f"{PEER} is unavailable", "httpx.ConnectError"),
        (httpx.ReadError("reset"), 503, f"{PEER} is unavailable", "httpx.ReadError"),
        (httpx.ConnectTimeout("slow"), 504, TIMED_OUT, "httpx.ConnectTimeout"),
        (httpx.ReadTimeout("slow"), 504, TIMED_OUT, "httpx.ReadTimeout"),
        (httpx.WriteTimeout("slow"), 504, TIMED_OUT, "httpx.WriteTimeout"),
        (
            httpx.RemoteProtocolError("eh"),
            502,
            f"{PEER} failed: RemoteProtocolError",
            "httpx.RemoteProtocolError",
        ),
    ],
)
def test_transport_failures(exc: Exception, status: int, detail: str, exc_type: str) -> None:
    harness = Harness(raising(exc))

    error = harness.error()

    assert (error.status, error.detail) == (status, detail)
    assert isinstance(error.__cause__, type(exc))
    span = harness.client_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert "http.status_code" not in span.attributes
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    assert events[0].attributes is not None
    assert events[0].attributes["exception.type"] == exc_type


def test_timeout_detail_uses_the_configured_timeout() -> None:
    error = Harness(raising(httpx.ReadTimeout("slow")), timeout=0.25).error()

    assert (error.status, error.detail) == (504, f"{PEER} did not answer within 0.25 s")


# -- providers ---------------------------------------------------------------------------------


def test_metrics_go_to_the_meter_provider_passed() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    client = TracedClient(
        BASE,
        peer_service=PEER,
        tracer_provider=TracerProvider(),
        meter_provider=meters,
        transport=httpx.MockTransport(json_answer(200, {"id": 7})),
    )

    async def main() -> None:
        try:
            await client.call("GET", "/users/{id}", path_params={"id": 7})
        finally:
            await client.aclose()

    asyncio.run(main())

    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names & {"http.client.duration", "http.client.request.duration"}
