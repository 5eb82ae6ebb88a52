"""TracedClient through its real transports: aiohttp's (the default) and httpx's own.

Every promise of the client, each checked on both, against a peer on loopback that
answers, stalls or breaks on purpose (``support.peer``): the context and request id it
sends, the CLIENT span with its hop events, the same 5xx for the same failure, a pooled
connection reused, an idle one closed by the client before Cello's idle timeout, and the
connection limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cello_problem import HTTPError
from cello_telemetry import TelemetryConfigError, TracedClient, request_id
from cello_telemetry.client import DEFAULT_LIMITS, TRANSPORT_ENV
from support.peer import Behaviour, Peer, refused_url

PEER = "user-service"
CELLO_IDLE_TIMEOUT_S = 30.0  # Cello closes a keep-alive connection idle this long
TRANSPORTS = ["aiohttp", "httpx"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each transport in turn, named in the code (the variable, which would win, unset)."""
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    return str(request.param)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


Use = Callable[[TracedClient, Peer], Awaitable[Any]]


def run(
    use: Use,
    transport: str,
    behaviour: Behaviour = "json",
    *,
    provider: TracerProvider | None = None,
    url: str | None = None,
    **client: Any,
) -> tuple[Any, Peer]:
    """``use(client, peer)`` in a fresh loop, on a client of ``transport`` to a new peer."""

    async def main() -> tuple[Any, Peer]:
        async with Peer(behaviour, delay=client.pop("delay", 0.0)) as peer:
            traced = TracedClient(
                url or peer.url,
                peer_service=PEER,
                transport=transport,  # type: ignore[arg-type]
                tracer_provider=provider or TracerProvider(),
                **client,
            )
            try:
                return await use(traced, peer), peer
            finally:
                await traced.aclose()

    return asyncio.run(main())


async def get_user(client: TracedClient, _: Peer) -> Any:
    return await client.call("GET", "/users/{id}", path_params={"id": 7})


def failure(transport: str, behaviour: Behaviour, **client: Any) -> HTTPError:
    async def use(traced: TracedClient, peer: Peer) -> HTTPError:
        with pytest.raises(HTTPError) as caught:
            await get_user(traced, peer)
        return caught.value

    error, _ = run(use, transport, behaviour, **client)
    assert isinstance(error, HTTPError)
    return error


# -- what a call sends -------------------------------------------------------------------------


def test_a_call_sends_trace_context_baggage_and_the_request_id(transport: str) -> None:
    parent = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("vendor", "abc")]),
    )
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    token = otel_context.attach(baggage.set_baggage("tenant", "acme", context))
    rid = request_id.bind("req-42")
    try:
        body, peer = run(get_user, transport)
    finally:
        request_id.unbind(rid)
        otel_context.detach(token)

    assert body == {"id": 7}
    (seen,) = peer.requests
    assert (seen.method, seen.target) == ("GET", "/users/7")
    assert seen.headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert seen.headers["tracestate"] == "vendor=abc"
    assert seen.headers["baggage"] == "tenant=acme"
    assert seen.headers["x-request-id"] == "req-42"
    assert "x-request-deadline" in seen.headers


def test_a_post_sends_its_json_body(transport: str) -> None:
    async def create(client: TracedClient, _: Peer) -> Any:
        return await client.call("POST", "/users", json={"name": "Ada"})

    _, peer = run(create, transport)

    (seen,) = peer.requests
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == b'{"name":"Ada"}'


# -- the CLIENT span ---------------------------------------------------------------------------


def client_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]


def test_the_client_span_its_name_attributes_and_hop_events(
    transport: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans

    async def two_calls(client: TracedClient, peer: Peer) -> None:
        await get_user(client, peer)
        await client.call("POST", "/users", json={"name": "Ada"})

    _, peer = run(two_calls, transport, provider=provider)

    first, second = client_spans(exporter)
    assert (first.name, second.name) == ("GET /users/{id}", "POST /users")
    assert first.attributes is not None
    assert first.attributes["peer.service"] == PEER
    assert first.attributes["http.url"] == f"{peer.url}/users/7"
    assert first.attributes["http.status_code"] == 200
    assert first.status.status_code is StatusCode.UNSET
    # A new connection, then the request out, then the answer's head in; the second call
    # reuses the connection, and its event comes once its body is out too.
    assert [e.name for e in first.events] == [
        "connected",
        "request sent",
        "response headers received",
    ]
    assert [e.name for e in second.events] == ["request sent", "response headers received"]
    assert peer.opened == 1


# -- failures: the same answer on both transports ----------------------------------------------


def test_no_answer_within_the_timeout_is_504(transport: str) -> None:
    error = failure(transport, "silent", timeout=0.3)

    assert (error.status, error.detail) == (504, f"{PEER} did not answer within 0.3 s")


def test_a_refused_connection_is_503(transport: str) -> None:
    error = failure(transport, "json", url=refused_url())

    assert (error.status, error.detail) == (503, f"{PEER} is unavailable")


def test_a_reset_connection_is_503(transport: str) -> None:
    error = failure(transport, "reset")

    assert (error.status, error.detail) == (503, f"{PEER} is unavailable")


@pytest.mark.parametrize("behaviour", ["hang-up", "garbage"])
def test_no_answer_or_not_http_is_502(transport: str, behaviour: Behaviour) -> None:
    error = failure(transport, behaviour)

    assert error.status == 502
    assert error.detail is not None
    assert error.detail.startswith(f"{PEER} failed: ")


def test_a_failed_call_is_an_error_span(
    transport: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans

    failure(transport, "reset", provider=provider)

    (span,) = client_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events if e.name == "exception"] == ["exception"]


# -- connections -------------------------------------------------------------------------------


def test_calls_in_a_row_share_one_connection(transport: str) -> None:
    async def three(client: TracedClient, peer: Peer) -> None:
        for _ in range(3):
            await get_user(client, peer)

    _, peer = run(three, transport)

    assert (len(peer.requests), peer.opened) == (3, 1)


def test_the_client_ends_an_idle_connection_and_never_reuses_it(transport: str) -> None:
    """Keep-alive ends at the client, before Cello's idle timeout, so no request is ever
    sent on a connection the server is closing."""
    assert DEFAULT_LIMITS.keepalive_expiry is not None
    assert DEFAULT_LIMITS.keepalive_expiry < CELLO_IDLE_TIMEOUT_S

    async def idle(client: TracedClient, peer: Peer) -> float:
        await get_user(client, peer)
        answered = time.monotonic()
        await asyncio.sleep(0.6)  # past the expiry of 0.2 s
        await get_user(client, peer)
        return answered

    limits = httpx.Limits(max_connections=8, keepalive_expiry=0.2)
    answered, peer = run(idle, transport, limits=limits)

    assert (len(peer.requests), peer.opened) == (2, 2)  # the second call on a new connection
    assert peer.closed_by_client, "the client never ended the idle connection"
    assert peer.closed_by_client[0] - answered >= 0.2


def test_concurrent_calls_open_no_more_than_the_limit(transport: str) -> None:
    async def burst(client: TracedClient, peer: Peer) -> list[Any]:
        return await asyncio.gather(*(get_user(client, peer) for _ in range(6)))

    limits = httpx.Limits(max_connections=2, keepalive_expiry=5.0)
    bodies, peer = run(burst, transport, "slow", delay=0.1, limits=limits)

    assert bodies == [{"id": 7}] * 6
    assert (peer.opened, peer.most_open) == (2, 2)


# -- warm-up and the choice of transport -------------------------------------------------------


def test_warm_up_opens_a_connection_and_makes_no_span(
    transport: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans

    async def warm(client: TracedClient, peer: Peer) -> bool:
        return await client.warm_up("/health")

    warmed, peer = run(warm, transport, provider=provider)

    assert warmed is True
    assert [r.target for r in peer.requests] == ["/health"]
    assert client_spans(exporter) == []


def test_warm_up_of_a_peer_that_is_down_is_false(transport: str) -> None:
    async def warm(client: TracedClient, peer: Peer) -> bool:
        return await client.warm_up("/health")

    warmed, _ = run(warm, transport, url=refused_url())

    assert warmed is False


def causes(exc: BaseException) -> Iterator[BaseException]:
    cause: BaseException | None = exc
    while cause is not None:
        yield cause
        cause = cause.__cause__


@pytest.mark.parametrize(
    ("setting", "code", "on_aiohttp"),
    [
        (None, None, True),  # the default
        ("", None, True),  # blank is unset
        (None, "httpx", False),
        ("aiohttp", "httpx", True),  # the variable wins
        (" HTTPX ", "aiohttp", False),
    ],
)
def test_the_variable_chooses_the_transport_over_the_code(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, code: str | None, on_aiohttp: bool
) -> None:
    if setting is None:
        monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    else:
        monkeypatch.setenv(TRANSPORT_ENV, setting)

    error = failure(code, "json", url=refused_url())  # type: ignore[arg-type]

    # On aiohttp's transport, httpx's error is a translation of aiohttp's own.
    modules = {type(c).__module__.split(".")[0] for c in causes(error)}
    assert ("aiohttp" in modules) is on_aiohttp


@pytest.mark.parametrize("setting", ["requests", "httpx2", "aiohttp,httpx"])
def test_an_unknown_transport_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv(TRANSPORT_ENV, setting)

    with pytest.raises(TelemetryConfigError, match=f"{TRANSPORT_ENV}='{setting}'"):
        TracedClient("http://127.0.0.1:1", peer_service=PEER)


def test_an_unknown_transport_argument_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    with pytest.raises(TelemetryConfigError, match="transport='curl'"):
        TracedClient("http://127.0.0.1:1", peer_service=PEER, transport="curl")  # type: ignore[arg-type]
