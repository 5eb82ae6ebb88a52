"""``App``: Cello's application class with telemetry and request ids made real.

Cello 1.4.1 documents ``app.enable_telemetry(OpenTelemetryConfig(...))`` and
``app.enable_request_id()``, but the first exports nothing, the second does not exist,
and Cello has no Python middleware hook. So this subclass wraps every handler as it is
registered (``route``, the verb decorators, ``head``, ``options`` and blueprints) in the
service's edge: :mod:`.routing` builds the handler, :mod:`.exchange` runs each request
in its SERVER span, :mod:`.responses` answers it.

Cello answers a request no route matches itself (a 404 in ``application/json``, no
headers of ours). So when the app starts to serve, :meth:`App.run` adds what its router
allows to route to the edge too: ``HEAD`` for each ``GET`` route, and catch-all routes
that answer an unknown path (a trailing slash included) with a 404 problem and a wrong
method with a 405 problem and ``Allow``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, Final, Self

import cello
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from .config import OpenTelemetryConfig
from .exchange import Edge
from .routing import Handler, traced_handler, unrouted_handler
from .telemetry import Telemetry

#: The methods Cello can route; it would ignore any other silently.
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

Register = Callable[..., Callable[[Handler], Any]]

# Cello's router (matchit) names a catch-all parameter with "*"; it matches one or more
# characters, so "/" needs a route of its own.
_CATCH_ALL = "/*unrouted"


class App(cello.App):  # type: ignore[misc]  # cello ships no type information
    """A Cello ``App`` whose ``enable_telemetry`` and ``enable_request_id`` work.

    Routes may be registered before or after the ``enable_*`` calls: the edge reads
    the app's settings when a request arrives.
    """

    def __init__(self) -> None:
        super().__init__()
        self._edge = Edge()
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._blocking: dict[tuple[str, str], bool | None] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._unrouted_added = False

    # -- the documented Cello API -------------------------------------------------

    def enable_request_id(self) -> Self:
        """Accept ``X-Request-ID`` (1-128 of ``[A-Za-z0-9._:-]``) or generate one.

        The id is echoed on the response, recorded as ``request.id`` on the SERVER
        span, written on every log line and forwarded on every outbound call.
        """
        self._edge.request_ids = True
        return self

    def enable_telemetry(
        self,
        config: OpenTelemetryConfig | None = None,
        *,
        exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> Self:
        """Trace every request, time it in ``http.server.request.duration``, export over OTLP.

        Configures no logging: a service installs :class:`cello_telemetry.JsonFormatter`
        (or its own handlers) and ``app.telemetry.log_handler()`` at start-up.

        Args:
            config: as in Cello's docs; the standard ``OTEL_*`` variables override it.
            exporter: replaces the OTLP span exporter (tests pass an in-memory one).
            metric_reader: replaces the periodic OTLP metric reader (tests pass an
                ``InMemoryMetricReader``); metrics that are off stay off.
        """
        config = config or OpenTelemetryConfig(service_name="cello-service")
        self._edge.telemetry = Telemetry(config, exporter, metric_reader)
        self.on_event("shutdown")(self._shutdown_telemetry)
        return self

    def record_baggage(self, *keys: str) -> Self:
        """Record these W3C ``baggage`` entries on every SERVER span as ``baggage.<key>``.

        Only named keys are recorded: baggage comes from the caller and may hold anything.
        """
        self._edge.baggage.recorded = keys
        return self

    def baggage_from_header(self, header: str, key: str) -> Self:
        """Add request header ``header`` to the request's W3C baggage as entry ``key``.

        The entry is in place before the SERVER span starts, so it is recorded (with
        :meth:`record_baggage`), visible to the handler and sent on every call the
        request makes. Only a short token, 1-64 of ``[A-Za-z0-9._:-]``, is taken;
        anything else, like an absent header, leaves the caller's baggage as it is.
        """
        self._edge.baggage.headers[header.lower()] = key
        return self

    def trust_incoming_trace(self, trusted: bool) -> Self:
        """Whether a request's ``traceparent`` decides its SERVER span's parent and sampling.

        ``True`` (the default) suits a service whose callers are your own services:
        the span continues the caller's trace and follows its sampled flag. At a public
        edge pass ``False``, as OpenTelemetry advises for untrusted callers: each
        request starts a new trace, sampled by this service's own sampler, and the
        caller's span context is kept as a link on the SERVER span. So no client can
        switch tracing off with flags ``00``, or add spans to a trace it names.
        Baggage is taken either way (see :meth:`record_baggage`).
        """
        self._edge.trust_incoming_trace = trusted
        return self

    @property
    def telemetry(self) -> Telemetry | None:
        """The telemetry runtime, once :meth:`enable_telemetry` has been called."""
        return self._edge.telemetry

    def on_event[F: Callable[..., Any]](self, event_type: str) -> Callable[[F], F]:
        """Register a ``"startup"`` or ``"shutdown"`` hook (Cello's API, typed)."""
        register: Callable[[F], F] = super().on_event(event_type)
        return register

    # -- route registration: every way Cello offers ---------------------------------
    # guards= and body= are taken out of Cello's hands and applied inside the span
    # (see .routing); tags, summary, description and blocking go to Cello as they are.

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().get, path, ("GET",), options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().post, path, ("POST",), options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().put, path, ("PUT",), options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().patch, path, ("PATCH",), options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().delete, path, ("DELETE",), options)

    def head(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().head, path, ("HEAD",), options)

    def options(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._route(super().options, path, ("OPTIONS",), options)

    def route(
        self, path: str, methods: list[str] | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        wanted = tuple(m.upper() for m in methods or ["GET"])
        unknown = sorted(set(wanted) - METHODS)
        if unknown:
            raise ValueError(f"{path}: Cello routes no {', '.join(unknown)} requests")
        return self._route(partial(super().route, methods=list(wanted)), path, wanted, options)

    def register_blueprint(self, blueprint: cello.Blueprint) -> None:
        """Register a blueprint's routes (nested ones included), each with its SERVER span.

        A blueprint applies its routes' ``guards=`` and ``body=`` itself, inside the
        handler it hands over, so they run inside the span too: a guard's refusal is its
        401/403 problem; a refused body is Cello's own 400 answer.
        """
        for method, path, handler in blueprint.get_all_routes():
            register = partial(super().route, methods=[method])
            blocking = getattr(handler, "__cello_blocking__", None)
            self._route(register, path, (method,), {"blocking": blocking})(handler)

    def add_guard(self, guard: Any) -> None:
        """Refused: Cello checks an app-wide guard before any handler, outside the span.

        Its 403 would leave with no span, ``traceparent`` or ``X-Request-ID``. Pass the
        guard to each route instead (``@app.get(path, guards=[guard])``).
        """
        raise ValueError(
            "add_guard: Cello answers an app-wide guard's refusal outside any SERVER span; "
            "pass it to each route as guards=[...] instead"
        )

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Cello's ``run``, once every request the router can send us is routed to the edge.

        Added here, after the service registered its own routes: ``HEAD`` for each
        ``GET`` route without one (the server sends no body), and a fallback, for each
        method that has no route of its own there, on ``/``, on a catch-all below ``/``,
        and on each route's path, that path with a trailing slash and a catch-all below
        it. The fallback answers a 404 or 405 problem (see
        :func:`cello_telemetry.routing.unrouted_handler`). A route the router refuses as
        a conflict with one of the app's own is skipped.
        """
        self._route_unrouted()
        super().run(*args, **kwargs)

    def _route_unrouted(self) -> None:
        if self._unrouted_added:
            return
        self._unrouted_added = True
        for method, path in list(self._handlers):
            if method == "GET" and ("HEAD", path) not in self._handlers:
                self._add("HEAD", path, self._handlers[method, path], self._blocking[method, path])
        # The router does not fall back from a route's prefix to a catch-all, so each of
        # the app's paths gets the fallback for the other methods, and one beneath it.
        fallback = unrouted_handler(self._edge, self._allowed)
        paths = {path for _, path in self._handlers}
        extra = [_CATCH_ALL, "/"]
        for path in sorted(paths):
            extra.append(path)
            if not path.endswith("/") and "*" not in path:
                extra += [f"{path}/", f"{path}{_CATCH_ALL}"]
        for path in extra:
            for method in sorted(METHODS):
                if (method, path) not in self._handlers:
                    self._add(method, path, fallback, None, track=False)

    def _add(
        self, method: str, path: str, handler: Handler, blocking: bool | None, track: bool = True
    ) -> None:
        try:
            super().route(path, methods=[method], blocking=blocking)(handler)
        except ValueError:  # the router's conflict with a route of the app's own
            return
        if track:
            self._handlers[method, path] = handler
            self._blocking[method, path] = blocking

    def _allowed(self, path: str) -> list[str]:
        """The methods the app's own routes serve on ``path``."""
        methods = []
        for method, route in self._handlers:
            pattern = self._patterns.get(route)
            if pattern is None:
                pattern = self._patterns[route] = _route_pattern(route)
            if pattern.fullmatch(path):
                methods.append(method)
        return methods

    def handler_for(self, method: str, route: str) -> Handler:
        """The handler for ``METHOD route`` as Cello calls it, the edge included.

        Lets a test drive the whole edge (span, request id, problem+json) with a
        hand-built ``cello.Request`` and no server.
        """
        return self._handlers[method, route]

    def _route(
        self, register: Register, path: str, methods: tuple[str, ...], options: dict[str, Any]
    ) -> Callable[[Handler], Handler]:
        guards = options.pop("guards", None)
        body = options.pop("body", None)
        cello_register = register(path, **options)

        def decorator(handler: Handler) -> Handler:
            wrapped = traced_handler(self._edge, path, handler, guards=guards, body=body)
            for method in methods:
                self._handlers[method, path] = wrapped
                self._blocking[method, path] = options.get("blocking")
            cello_register(wrapped)
            return handler

        return decorator

    async def _shutdown_telemetry(self) -> None:
        if self._edge.telemetry is not None:
            self._edge.telemetry.shutdown()


def _route_pattern(route: str) -> re.Pattern[str]:
    """The paths a Cello route matches: ``{name}`` one segment, ``*name`` the rest."""
    segments = []
    for segment in route.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            segments.append("[^/]+")
        elif segment.startswith("*"):
            segments.append(".+")
        else:
            segments.append(re.escape(segment))
    return re.compile("/".join(segments))
