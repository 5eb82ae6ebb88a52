"""``App``: Cello's application class with telemetry and request ids made real.

Cello 1.4.1 documents ``app.enable_telemetry(OpenTelemetryConfig(...))`` and
``app.enable_request_id()``, but the first exports nothing and the second does not
exist, and Cello has no Python middleware hook. So this subclass wraps every handler
as it is registered. The wrapper is the service's edge:

- it continues the caller's trace (``traceparent``/``tracestate``/``baggage``) or
  starts one, and records one SERVER span named ``METHOD /route/{pattern}``;
- it accepts or generates the request id and echoes it;
- it turns :class:`HTTPError` (and any unexpected exception) into problem+json;
- it puts ``traceparent`` on every response, so a client can find its trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import Any, Self
from urllib.parse import urlencode

import cello
from cello import Request, Response
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import attributes as attr
from . import request_id
from .config import OpenTelemetryConfig
from .errors import HTTPError, problem_response
from .logs import configure_logging
from .propagation import format_traceparent, remote_parent
from .telemetry import BAGGAGE, Telemetry
from .tracer import LeanSpan

logger = logging.getLogger("cello_telemetry.access")
BAGGAGE_HEADER = "baggage"

Handler = Callable[[Request], Any]

# What App.baggage_from_header accepts: the header comes from any client, and the
# value is forwarded to every service and recorded on spans, so only plain tokens.
_BAGGAGE_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


class App(cello.App):  # type: ignore[misc]  # cello ships no type information
    """A Cello ``App`` whose ``enable_telemetry`` and ``enable_request_id`` work.

    Routes may be registered before or after the ``enable_*`` calls: the wrapper
    reads the app's settings when a request arrives.
    """

    def __init__(self) -> None:
        super().__init__()
        self._telemetry: Telemetry | None = None
        self._request_ids = False
        self._baggage_keys: tuple[str, ...] = ()
        self._baggage_headers: dict[str, str] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}

    # -- the documented Cello API -------------------------------------------------

    def enable_request_id(self) -> Self:
        """Accept ``X-Request-ID`` (1-128 of ``[A-Za-z0-9._:-]``) or generate one.

        The id is echoed on the response, recorded as ``request.id`` on the SERVER
        span, written on every log line and forwarded on every outbound call.
        """
        self._request_ids = True
        return self

    def enable_telemetry(
        self, config: OpenTelemetryConfig | None = None, *, exporter: SpanExporter | None = None
    ) -> Self:
        """Trace every request and export spans over OTLP.

        Args:
            config: as in Cello's docs; the standard ``OTEL_*`` variables override it.
            exporter: replaces the OTLP exporter (tests pass an in-memory one).
        """
        config = config or OpenTelemetryConfig(service_name="cello-service")
        self._telemetry = Telemetry(config, exporter)
        configure_logging(self._telemetry.settings.service_name)
        self.on_event("shutdown")(self._shutdown_telemetry)
        return self

    def record_baggage(self, *keys: str) -> Self:
        """Record these W3C ``baggage`` entries on every SERVER span as ``baggage.<key>``.

        Baggage travels with the trace context through every hop; recording chosen
        keys makes a value set at the edge (say ``demo.session``) searchable on the
        spans of every service. Only named keys are recorded: baggage comes from the
        caller and may hold anything.
        """
        self._baggage_keys = keys
        return self

    def baggage_from_header(self, header: str, key: str) -> Self:
        """Add request header ``header`` to the request's W3C baggage as entry ``key``.

        The entry is in place before the SERVER span starts, so it is recorded (with
        :meth:`record_baggage`), visible to the handler and sent on every call the
        request makes. Only a short token, 1-64 of ``[A-Za-z0-9._:-]``, is taken;
        anything else, like an absent header, leaves the caller's baggage as it is.
        """
        self._baggage_headers[header.lower()] = key
        return self

    @property
    def telemetry(self) -> Telemetry | None:
        """The telemetry runtime, once :meth:`enable_telemetry` has been called."""
        return self._telemetry

    def on_event[F: Callable[..., Any]](self, event_type: str) -> Callable[[F], F]:
        """Register a ``"startup"`` or ``"shutdown"`` hook (Cello's API, typed)."""
        register: Callable[[F], F] = super().on_event(event_type)
        return register

    # -- route registration -------------------------------------------------------

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route("GET", path, super().get(path, **options))

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route("POST", path, super().post(path, **options))

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route("PUT", path, super().put(path, **options))

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route("PATCH", path, super().patch(path, **options))

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route("DELETE", path, super().delete(path, **options))

    def _route(
        self, method: str, route: str, register: Callable[[Handler], Any]
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            wrapped = self._wrap(method, route, handler)
            self._handlers[method, route] = wrapped
            register(wrapped)
            return handler

        return decorator

    def _wrap(self, method: str, route: str, handler: Handler) -> Handler:
        span_name = f"{method} {route}"
        # Copy name and docstring (Cello's OpenAPI uses them) but not the signature:
        # Cello would otherwise try to validate our wrapper's parameters.
        keep = functools.wraps(handler, assigned=("__module__", "__name__", "__doc__"), updated=())

        if inspect.iscoroutinefunction(handler):
            async_handler: Callable[[Request], Awaitable[Any]] = handler

            @keep
            async def traced_async(request: Request) -> Response:
                exchange = _Exchange(self, request, span_name, route)
                try:
                    response = _as_response(await async_handler(request))
                except Exception as exc:  # noqa: BLE001 - the edge answers every failure
                    return exchange.fail(exc)
                return exchange.finish(response)

            return traced_async

        @keep
        def traced(request: Request) -> Response:
            exchange = _Exchange(self, request, span_name, route)
            try:
                response = _as_response(handler(request))
            except Exception as exc:  # noqa: BLE001 - the edge answers every failure
                return exchange.fail(exc)
            return exchange.finish(response)

        return traced

    def handler_for(self, method: str, route: str) -> Handler:
        """The handler for ``METHOD route`` as Cello calls it, wrapper included.

        Lets a test drive the whole edge (span, request id, problem+json) with a
        hand-built ``cello.Request`` and no server.
        """
        return self._handlers[method, route]

    async def _shutdown_telemetry(self) -> None:
        if self._telemetry is not None:
            self._telemetry.shutdown()


class _Exchange:
    """One request's span, request id and context tokens, from arrival to response."""

    __slots__ = ("_context_token", "_id_token", "_request", "_rid", "_route", "_span", "_start")

    def __init__(self, app: App, request: Request, span_name: str, route: str) -> None:
        self._start = time.perf_counter()
        self._request = request
        self._route = route
        headers = request.headers
        self._rid: str | None = None
        self._id_token: Token[str | None] | None = None
        if app._request_ids:
            self._rid = request_id.accept_or_generate(headers.get(request_id.HEADER))
            self._id_token = request_id.bind(self._rid)
        self._span: trace.Span | None = None
        self._context_token: Token[otel_context.Context] | None = None
        telemetry = app._telemetry
        if telemetry is None or not telemetry.enabled:
            return
        if request.path in telemetry.settings.excluded_paths:
            return
        # The fast path: parse the headers directly and start the span without going
        # through the generic propagator and tracer API (see tracer.LeanTracer.start_child).
        parent_context = otel_context.Context()
        if BAGGAGE_HEADER in headers:
            parent_context = BAGGAGE.extract(headers, parent_context)
        for header, key in app._baggage_headers.items():
            value = headers.get(header)
            if value is not None and _BAGGAGE_TOKEN.fullmatch(value):
                parent_context = baggage.set_baggage(key, value, parent_context)
        span = telemetry.tracer.start_child(span_name, remote_parent(headers), SpanKind.SERVER)
        if isinstance(span, LeanSpan):
            span.attributes.update(_request_attributes(request, headers, route, self._rid))
            for key in app._baggage_keys:
                value = baggage.get_baggage(key, parent_context)
                if value is not None:
                    span.attributes[f"{attr.BAGGAGE_PREFIX}{key}"] = str(value)
        self._span = span
        self._context_token = otel_context.attach(trace.set_span_in_context(span, parent_context))

    def fail(self, exc: Exception) -> Response:
        """Answer an exception raised by the handler as problem+json."""
        if isinstance(exc, HTTPError):
            cause = exc if exc.status >= 500 else None
            return self.finish(problem_response(exc, self._request.path), cause)
        if self._span is not None:
            self._span.record_exception(exc)
        logger.exception("unhandled error in %s", self._route)
        error = HTTPError(500, "an unexpected error occurred; the request id is in X-Request-ID")
        return self.finish(problem_response(error, self._request.path), exc)

    def finish(self, response: Response, exc: Exception | None = None) -> Response:
        """Record the outcome, end the span and decorate the response."""
        status = int(response.status)
        span = self._span
        try:
            if span is not None:
                if isinstance(span, LeanSpan):
                    span.attributes[attr.HTTP_STATUS_CODE] = status
                    span.attributes[attr.HTTP_RESPONSE_CONTENT_LENGTH] = response.content_length()
                    if status >= 500:
                        # Server spans are errors only for 5xx; a 4xx is the client's.
                        description = None if exc is None else str(exc) or type(exc).__name__
                        span.set_status(Status(StatusCode.ERROR, description))
                response.set_header("traceparent", format_traceparent(span.get_span_context()))
            if self._rid is not None:
                response.set_header("X-Request-ID", self._rid)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s %d",
                    self._request.method,
                    self._route,
                    status,
                    extra={"duration_ms": round((time.perf_counter() - self._start) * 1000, 3)},
                )
        finally:
            if span is not None:
                span.end()
            if self._context_token is not None:
                otel_context.detach(self._context_token)
            if self._id_token is not None:
                request_id.unbind(self._id_token)
        return response


def _request_attributes(
    request: Request, headers: dict[str, str], route: str, rid: str | None
) -> dict[str, Any]:
    host = headers.get("host", "")
    query = request.query
    url = f"http://{host}{request.path}" + (f"?{urlencode(query)}" if query else "")
    attributes: dict[str, Any] = {
        attr.HTTP_METHOD: request.method,
        attr.HTTP_ROUTE: route,
        attr.HTTP_URL: url,
        attr.NET_HOST_NAME: _host_name(host),
    }
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        attributes[attr.HTTP_REQUEST_CONTENT_LENGTH] = int(length)
    if rid is not None:
        attributes[attr.REQUEST_ID] = rid
    return attributes


def _host_name(host: str) -> str:
    # "name:port", "[v6]:port" or "[v6]": drop the port, keep an IPv6 literal whole.
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.rsplit(":", 1)[0]


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response.no_content()
    if isinstance(result, str):
        return Response.text(result)
    return Response.json(result, status=200)
