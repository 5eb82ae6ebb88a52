"""``App``: Cello's application class with telemetry and request ids made real.

Cello 1.4.1 documents ``app.enable_telemetry(OpenTelemetryConfig(...))`` and
``app.enable_request_id()``, but the first exports nothing, the second does not exist,
and Cello has no Python middleware hook. So this subclass wraps every handler as it is
registered (``route``, the verb decorators, ``head``, ``options`` and blueprints). The
wrapper is the service's edge:

- it continues the caller's trace with the global propagator, or starts one, in a SERVER
  span named ``METHOD /route/{pattern}``, made through the OpenTelemetry API only, so it
  works under any tracer provider;
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

import cello
from cello import Request, Response
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import attributes as attr
from . import request_id
from .config import OpenTelemetryConfig
from .errors import HTTPError, problem_response
from .propagation import TRACEPARENT, TraceContextPropagator
from .telemetry import Telemetry

logger = logging.getLogger("cello_telemetry.access")

Handler = Callable[[Request], Any]

# What App.baggage_from_header accepts: the header comes from any client, and the
# value is forwarded to every service and recorded on spans, so only plain tokens.
_BAGGAGE_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
# Formats the response's traceparent, whatever OTEL_PROPAGATORS says for outbound calls.
_TRACE_CONTEXT = TraceContextPropagator()


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

        Configures no logging: a service installs :func:`cello_telemetry.logs.configure_logging`
        (or its own handlers) at start-up.

        Args:
            config: as in Cello's docs; the standard ``OTEL_*`` variables override it.
            exporter: replaces the OTLP exporter (tests pass an in-memory one).
        """
        config = config or OpenTelemetryConfig(service_name="cello-service")
        self._telemetry = Telemetry(config, exporter)
        self.on_event("shutdown")(self._shutdown_telemetry)
        return self

    def record_baggage(self, *keys: str) -> Self:
        """Record these W3C ``baggage`` entries on every SERVER span as ``baggage.<key>``.

        Only named keys are recorded: baggage comes from the caller and may hold anything.
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

    # -- route registration: every way Cello offers ---------------------------------

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().get(path, **options), "GET")

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().post(path, **options), "POST")

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().put(path, **options), "PUT")

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().patch(path, **options), "PATCH")

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().delete(path, **options), "DELETE")

    def head(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().head(path, **options), "HEAD")

    def options(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(path, super().options(path, **options), "OPTIONS")

    def route(
        self, path: str, methods: list[str] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        methods = [m.upper() for m in methods or ["GET"]]
        return self._route(path, super().route(path, methods, **options), *methods)

    def register_blueprint(self, blueprint: cello.Blueprint) -> None:
        """Register a blueprint's routes (nested ones included), each with its SERVER span."""
        for method, path, handler in blueprint.get_all_routes():
            blocking = getattr(handler, "__cello_blocking__", None)
            self._route(path, super().route(path, [method], blocking=blocking), method)(handler)

    def _route(
        self, path: str, register: Callable[[Handler], Any], *methods: str
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            wrapped = self._wrap(path, handler)
            for method in methods:
                self._handlers[method, path] = wrapped
            register(wrapped)
            return handler

        return decorator

    def _wrap(self, route: str, handler: Handler) -> Handler:
        # Copy name and docstring (Cello's OpenAPI uses them) but not the signature:
        # Cello would otherwise try to validate our wrapper's parameters.
        keep = functools.wraps(handler, assigned=("__module__", "__name__", "__doc__"), updated=())

        if inspect.iscoroutinefunction(handler):
            async_handler: Callable[[Request], Awaitable[Any]] = handler

            @keep
            async def traced_async(request: Request) -> Response:
                exchange = _Exchange(self, request, route)
                try:
                    response = _as_response(await async_handler(request))
                except Exception as exc:  # noqa: BLE001 - the edge answers every failure
                    return exchange.fail(exc)
                return exchange.finish(response)

            return traced_async

        @keep
        def traced(request: Request) -> Response:
            exchange = _Exchange(self, request, route)
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
    """One request's span, request id and context, from arrival to response."""

    __slots__ = (
        "_context_token",
        "_id_token",
        "_mode",
        "_request",
        "_rid",
        "_route",
        "_span",
        "_start",
    )

    def __init__(self, app: App, request: Request, route: str) -> None:
        self._start = time.perf_counter()
        self._request = request
        self._route = route
        self._rid: str | None = None
        self._id_token: Token[str | None] | None = None
        self._span: trace.Span | None = None
        self._context_token: Token[otel_context.Context] | None = None
        self._mode = attr.HttpSemconv.OLD
        headers = request.headers
        if app._request_ids:
            self._rid = request_id.accept_or_generate(headers.get(request_id.HEADER))
            self._id_token = request_id.bind(self._rid)
        telemetry = app._telemetry
        if (
            telemetry is None
            or not telemetry.enabled
            or request.path in (telemetry.settings.excluded_paths)
        ):
            return
        self._mode = telemetry.http_semconv
        parent = propagate.extract(headers)
        for header, key in app._baggage_headers.items():
            value = headers.get(header)
            if value is not None and _BAGGAGE_TOKEN.fullmatch(value):
                parent = baggage.set_baggage(key, value, parent)
        attributes = attr.server_request(
            telemetry.http_semconv, request.method, route, request.path, request.query, headers
        )
        if self._rid is not None:
            attributes[attr.REQUEST_ID] = self._rid
        for key in app._baggage_keys:
            value = baggage.get_baggage(key, parent)
            if value is not None:
                attributes[f"{attr.BAGGAGE_PREFIX}{key}"] = str(value)
        self._span = telemetry.tracer.start_span(
            f"{request.method} {route}", parent, SpanKind.SERVER, attributes
        )
        self._context_token = otel_context.attach(trace.set_span_in_context(self._span, parent))

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
                if span.is_recording():
                    span.set_attributes(
                        attr.server_response(self._mode, status, response.content_length())
                    )
                if status >= 500:
                    # Server spans are errors only for 5xx; a 4xx is the client's.
                    description = None if exc is None else str(exc) or type(exc).__name__
                    span.set_status(Status(StatusCode.ERROR, description))
                carrier: dict[str, str] = {}
                _TRACE_CONTEXT.inject(carrier, trace.set_span_in_context(span))
                if TRACEPARENT in carrier:
                    response.set_header(TRACEPARENT, carrier[TRACEPARENT])
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


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response.no_content()
    if isinstance(result, str):
        return Response.text(result)
    return Response.json(result, status=200)
