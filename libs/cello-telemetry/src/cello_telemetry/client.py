"""The traced HTTP client for calls from one service to the next.

Each call is a CLIENT span made by the ecosystem's httpx instrumentation
(``opentelemetry-instrumentation-httpx``), a child of the current span, and carries the
trace context (the global propagator: ``traceparent``, ``tracestate``, ``baggage`` by
default) and the request id to the next service. What this module adds is ours: the base
URL, the timeout, the span name from the route template, ``peer.service``, and the
mapping of a dead or slow peer to a 5xx :class:`HTTPError` at once, never a hang.

The sockets are aiohttp's, behind httpx's API: ``httpx_aiohttp.AiohttpTransport`` plugs
into httpx's transport extension point and takes about a third of the CPU per call that
httpx's own transport does (``make bench``). ``CELLO_HTTP_TRANSPORT=httpx``, or
``transport="httpx"``, switches back to httpx's own; everything below holds on both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp
import httpx
import httpx_aiohttp
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from cello_problem import HTTPError

from . import attributes as attr
from . import deadline, request_id
from .config import TelemetryConfigError

# The request extension that carries the route template to the span-naming hook.
_ROUTE: Final = "cello_telemetry.route"

#: Connections kept open to one peer: at least the concurrency a service expects, so a
#: burst does not open and close connections per request. An idle one is closed after
#: 25 s, before Cello's own 30 s idle timeout, so the client, not the server, ends it and
#: no request is ever sent on a connection the server is closing.
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=64, max_keepalive_connections=32, keepalive_expiry=25.0
)

#: Which transport carries the calls when ``transport`` is not given.
TRANSPORT_ENV: Final = "CELLO_HTTP_TRANSPORT"
TransportName = Literal["aiohttp", "httpx"]
_TRANSPORTS: Final = ("aiohttp", "httpx")

# The CLIENT span's events, so the time between its start and the peer's SERVER span reads
# in the trace: a new connection is "connected", the last byte of the request out is
# "request sent", the answer's head in is "response headers received". On httpx's own
# transport they come from httpcore's progress (its documented ``trace`` request extension,
# which other transports ignore).
_HTTPCORE_EVENTS: Final = {
    "connection.connect_tcp.complete": "connected",
    "http11.send_request_body.complete": "request sent",
    "http11.receive_response_headers.complete": "response headers received",
}


async def _httpcore_events(name: str, info: dict[str, Any]) -> None:
    event = _HTTPCORE_EVENTS.get(name)
    if event is not None:
        trace.get_current_span().add_event(event)


# On aiohttp's transport they come from its trace hooks (``aiohttp.TraceConfig``), which run
# inside the CLIENT span. aiohttp reports the head before it is written, then each body chunk
# after it is written: the request is sent once its Content-Length of body is out.
async def _connected(_: aiohttp.ClientSession, __: SimpleNamespace, ___: object) -> None:
    trace.get_current_span().add_event("connected")


async def _head_sent(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    ctx.body_left = int(params.headers.get("Content-Length") or 0)
    if ctx.body_left == 0:
        trace.get_current_span().add_event("request sent")


async def _chunk_sent(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    left = getattr(ctx, "body_left", 0)
    ctx.body_left = left - len(params.chunk)
    if left > 0 >= ctx.body_left:
        trace.get_current_span().add_event("request sent")


async def _head_received(_: aiohttp.ClientSession, __: SimpleNamespace, ___: object) -> None:
    trace.get_current_span().add_event("response headers received")


def _trace_config() -> aiohttp.TraceConfig:
    hooks = aiohttp.TraceConfig()
    hooks.on_connection_create_end.append(_connected)
    hooks.on_request_headers_sent.append(_head_sent)
    hooks.on_request_chunk_sent.append(_chunk_sent)
    hooks.on_request_end.append(_head_received)  # aiohttp's "end" is the answer's head
    return hooks


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's transport on one ``aiohttp.ClientSession``, made at the first call (in its loop).

    ``limits`` map to aiohttp's connector: ``max_connections`` is its ``limit`` and
    ``keepalive_expiry`` its ``keepalive_timeout``; aiohttp keeps every idle connection
    up to ``limit``, so ``max_keepalive_connections`` has no counterpart. Cookies stay
    httpx's business (aiohttp's own jar is a dummy).
    """
    hooks = _trace_config()

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,  # 0: no limit, as None is for httpx
            keepalive_timeout=limits.keepalive_expiry,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trace_configs=[hooks]
        )

    return httpx_aiohttp.AiohttpTransport(limits=limits, client=session)


def transport_name(name: str | None = None) -> TransportName:
    """``CELLO_HTTP_TRANSPORT`` if set, else ``name``, else ``"aiohttp"``.

    The variable wins over the code, as the ``OTEL_*`` variables do, so a deployment (or
    ``make bench``) switches transports without a change to the code.

    Raises:
        TelemetryConfigError: at start-up, for a name that is neither transport.
    """
    chosen, source = os.environ.get(TRANSPORT_ENV, "").strip().lower(), TRANSPORT_ENV
    if not chosen:
        chosen, source = (name or "aiohttp"), "transport"
    if chosen == "aiohttp":
        return "aiohttp"
    if chosen == "httpx":
        return "httpx"
    raise TelemetryConfigError(f"{source}={chosen!r}: use one of {', '.join(_TRANSPORTS)}")


class TracedClient:
    """An ``httpx.AsyncClient`` for one downstream service, with a span per call.

    Args:
        base_url: the service's root URL, e.g. ``http://users:8001``.
        peer_service: its ``service.name``; recorded as ``peer.service`` and used in
            error messages.
        timeout: seconds for the whole call (connect, send, wait, read).
        tracer_provider: defaults to the global one that ``enable_telemetry`` set.
        meter_provider: for the instrumentation's ``http.client.*`` metrics; defaults
            to the global one.
        limits: the connection pool (see ``DEFAULT_LIMITS``).
        transport: ``"aiohttp"`` (the default) or ``"httpx"`` for httpx's own, unless
            ``CELLO_HTTP_TRANSPORT`` says otherwise; or a ready httpx transport, such as
            ``httpx.MockTransport`` in tests, which is used as it is.

    Raises:
        TelemetryConfigError: for a transport name that is neither.
    """

    def __init__(
        self,
        base_url: str,
        *,
        peer_service: str,
        timeout: float = 3.0,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: TransportName | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._peer = peer_service
        self._timeout = timeout
        if isinstance(transport, httpx.AsyncBaseTransport):
            chosen: httpx.AsyncBaseTransport | None = transport
        elif transport_name(transport) == "aiohttp":
            chosen = _aiohttp_transport(limits)
        else:
            chosen = None  # httpx builds its own from limits
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout), limits=limits, transport=chosen
        )
        HTTPXClientInstrumentor.instrument_client(
            self._http,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            request_hook=self._on_request,
        )

    async def _on_request(self, span: trace.Span, request: RequestInfo) -> None:
        # Named after the route template, not the URL, so calls to different ids group.
        route = (request.extensions or {}).get(_ROUTE)
        if route is not None:
            span.update_name(f"{request.method.decode()} {route}")
        span.set_attribute(attr.PEER_SERVICE, self._peer)

    async def request(
        self,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, object] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send one request; ``route`` is a template such as ``/users/{id}``.

        The span is named ``METHOD route`` so calls to different ids group together.

        Raises:
            HTTPError: 503 when the peer refuses connections, 504 when it does not
                answer within the timeout (or the caller's deadline, if sooner, which
                goes along as ``X-Request-Deadline``), 502 for any other transport failure.
        """
        path = route
        if path_params:
            path = route.format(**{k: quote(str(v), safe="") for k, v in path_params.items()})
        # Wait no longer than the caller does, and tell the next service when that is.
        timeout = deadline.budget(self._timeout)
        if timeout <= 0:
            raise HTTPError(504, f"no time left to call {self._peer}: the caller gave up")
        headers = {deadline.HEADER: deadline.header_value(timeout)}
        rid = request_id.current_request_id()
        if rid is not None:
            headers[request_id.HEADER] = rid
        try:
            return await self._http.request(
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=timeout,
                extensions={_ROUTE: route, "trace": _httpcore_events},
            )
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, timeout) from exc

    async def call(
        self,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, object] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> Any:
        """Like :meth:`request`, but return the decoded JSON body of a 2xx answer.

        Raises:
            HTTPError: the peer's own 4xx problem, passed on as it is; 503 and 504
                passed on with the peer's detail; any other 5xx or an unreadable
                answer as 502.
        """
        response = await self.request(
            method, route, path_params=path_params, params=params, json=json
        )
        status = response.status_code
        if status == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            raise HTTPError(502, f"{self._peer} sent an unreadable answer") from None
        if status < 300:
            return body
        if status < 500:
            raise HTTPError.from_problem(status, body)
        if status in (503, 504):
            upstream = HTTPError.from_problem(status, body)
            raise HTTPError(status, f"{self._peer}: {upstream.detail or upstream.title}")
        raise HTTPError(502, f"{self._peer} failed with {status}")

    async def warm_up(self, path: str = "/health") -> bool:
        """Call ``GET path`` once, untraced, so the first real call finds a connection open.

        For a service's start-up: the first request of a new process otherwise pays for a
        TCP connection and for code paths run once. Never raises; ``False`` if the peer
        did not answer (it may start later; the first real call then connects).
        """
        with suppress_http_instrumentation():
            try:
                response = await self._http.get(path)
            except (httpx.HTTPError, aiohttp.ClientError):
                return False
        return response.is_success

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    def _transport_error(self, exc: Exception, timeout: float) -> HTTPError:
        """The same answer on both transports: too slow 504; refused or reset 503; else 502.

        On aiohttp's transport the error httpx raises is a translation of aiohttp's, which
        it keeps as ``__cause__`` (some, such as a malformed answer, arrive untranslated);
        aiohttp's own says more, so it decides.
        """
        cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
        if isinstance(cause, aiohttp.ClientError):
            slow = isinstance(cause, aiohttp.ServerTimeoutError)
            # ServerDisconnectedError (closed without an answer) is httpx's RemoteProtocolError.
            down = isinstance(cause, aiohttp.ClientOSError)  # refused, reset, unreachable
        else:
            slow = isinstance(exc, httpx.TimeoutException)
            down = isinstance(exc, httpx.NetworkError)  # refused (ConnectError), reset
        if slow:
            return HTTPError(504, f"{self._peer} did not answer within {timeout:.3g} s")
        if down:
            return HTTPError(503, f"{self._peer} is unavailable")
        return HTTPError(502, f"{self._peer} failed: {type(cause or exc).__name__}")
