"""The traced HTTP client for calls from one service to the next.

Each call is a CLIENT span made by the ecosystem's httpx instrumentation
(``opentelemetry-instrumentation-httpx``), a child of the current span, and carries the
trace context (the global propagator: ``traceparent``, ``tracestate``, ``baggage`` by
default) and the request id to the next service. What this module adds is ours: the base
URL, the timeout, the span name from the route template, ``peer.service``, and the
mapping of a dead or slow peer to a 5xx :class:`HTTPError` at once, never a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from cello_problem import HTTPError

from . import attributes as attr
from . import deadline, request_id

# The request extension that carries the route template to the span-naming hook.
_ROUTE: Final = "cello_telemetry.route"

#: Connections kept open to one peer: at least the concurrency a service expects, so a
#: burst does not open and close connections per request. An idle one is closed after
#: 25 s, before Cello's own 30 s idle timeout, so the client, not the server, ends it and
#: no request is ever sent on a connection the server is closing.
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=64, max_keepalive_connections=32, keepalive_expiry=25.0
)

# httpcore's progress (its documented ``trace`` request extension) -> CLIENT span events,
# so the time between this span's start and the peer's SERVER span reads in the trace.
_EVENTS: Final = {
    "connection.connect_tcp.complete": "connected",
    "http11.send_request_body.complete": "request sent",
    "http11.receive_response_headers.complete": "response headers received",
}


async def _span_events(name: str, info: dict[str, Any]) -> None:
    event = _EVENTS.get(name)
    if event is not None:
        trace.get_current_span().add_event(event)


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
        transport: an httpx transport, for tests.
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._peer = peer_service
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout), limits=limits, transport=transport
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
                extensions={_ROUTE: route, "trace": _span_events},
            )
        except httpx.HTTPError as exc:
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
            except httpx.HTTPError:
                return False
        return response.is_success

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    def _transport_error(self, exc: httpx.HTTPError, timeout: float) -> HTTPError:
        if isinstance(exc, httpx.TimeoutException):
            return HTTPError(504, f"{self._peer} did not answer within {timeout:.3g} s")
        if isinstance(exc, httpx.ConnectError):
            return HTTPError(503, f"{self._peer} is unavailable")
        return HTTPError(502, f"{self._peer} failed: {type(exc).__name__}")
