"""One request at the edge, from arrival to response: its SERVER span, id and context.

The span continues the caller's trace (the global propagator) or starts one, is named
``METHOD /route/{pattern}`` and is made through the OpenTelemetry API only, so it works
under any tracer provider. Its status is ERROR for a 5xx only: a 4xx is the client's.
An edge that does not trust its callers' trace context starts a new trace for every
request instead, linked to the caller's span (see ``App.trust_incoming_trace``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass, field

from cello import Request, Response
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from cello_problem import HTTPError, problem_response

from . import attributes as attr
from . import deadline, request_id, responses
from .baggage import BaggageRules
from .metrics import ServerMetrics
from .telemetry import Telemetry

logger = logging.getLogger("cello_telemetry.access")

_UNEXPECTED = "an unexpected error occurred; the request id is in X-Request-ID"


@dataclass(slots=True)
class Edge:
    """What an app's edge does for every request; ``App``'s ``enable_*`` calls set it."""

    telemetry: Telemetry | None = None
    request_ids: bool = False
    baggage: BaggageRules = field(default_factory=BaggageRules)
    trust_incoming_trace: bool = True

    def incoming(self, headers: Mapping[str, str]) -> tuple[otel_context.Context, list[Link]]:
        """The parent context of a request's SERVER span, and the links the span gets.

        Trusted, the caller's span is the parent and its sampled flag is followed.
        Untrusted, the parent is a new root, so this service's sampler decides, and
        the caller's span context is only a link. Baggage is kept either way.
        """
        extracted = propagate.extract(headers)
        if self.trust_incoming_trace:
            return self.baggage.take_headers(headers, extracted), []
        caller = trace.get_current_span(extracted).get_span_context()
        root = trace.set_span_in_context(trace.INVALID_SPAN, extracted)
        return self.baggage.take_headers(headers, root), [Link(caller)] if caller.is_valid else []


class Exchange:
    """Starts on arrival; :meth:`finish` or :meth:`fail` answers, ends the span, detaches."""

    __slots__ = ("_context_token", "_deadline_token", "_id_token", "_metrics", "_mode",
                 "_request", "_rid", "_route", "_span", "_start")  # fmt: skip

    def __init__(self, edge: Edge, request: Request, route: str | None) -> None:
        self._start = time.perf_counter()
        self._request = request
        self._route = route
        self._rid: str | None = None
        self._id_token: Token[str | None] | None = None
        self._span: trace.Span | None = None
        self._context_token: Token[otel_context.Context] | None = None
        self._mode = attr.HttpSemconv.OLD
        self._metrics: ServerMetrics | None = None
        headers = request.headers
        # The caller's deadline holds for the whole request, whatever the edge records.
        self._deadline_token = deadline.bind(deadline.accept(headers.get(deadline.HEADER)))
        if edge.request_ids:
            self._rid = request_id.accept_or_generate(headers.get(request_id.HEADER))
            self._id_token = request_id.bind(self._rid)
        telemetry = edge.telemetry
        if telemetry is None or not telemetry.enabled:
            return
        if request.path in telemetry.settings.excluded_paths:
            return
        self._mode = telemetry.settings.http_semconv
        self._metrics = telemetry.server_metrics
        parent, links = edge.incoming(headers)
        attributes = attr.server_request(
            self._mode, request.method, route, request.path, request.query, headers
        )
        if self._rid is not None:
            attributes[attr.REQUEST_ID] = self._rid
        attributes.update(edge.baggage.attributes(parent))
        # Without a route (a request no route took) the span is named after the method.
        name = f"{request.method} {route}" if route else request.method
        self._span = telemetry.tracer.start_span(name, parent, SpanKind.SERVER, attributes, links)
        self._context_token = otel_context.attach(trace.set_span_in_context(self._span, parent))

    def fail(self, exc: Exception) -> Response:
        """Answer an exception as problem+json: its own status, or 500 for a crash."""
        error = responses.known_error(exc)
        if error is not None:
            cause = exc if error.status >= 500 else None
            return self.finish(problem_response(error, self._request.path), cause)
        if self._span is not None:
            self._span.record_exception(exc)
        logger.exception("unhandled error in %s", self._route)
        crash = HTTPError(500, _UNEXPECTED)
        return self.finish(problem_response(crash, self._request.path), exc)

    def finish(self, response: Response, exc: Exception | None = None) -> Response:
        """Record the outcome, end the span and put the trace headers on ``response``."""
        status = int(response.status)
        span = self._span
        try:
            if span is not None:
                if span.is_recording():
                    span.set_attributes(
                        attr.server_response(self._mode, status, response.content_length())
                    )
                if status >= 500:
                    description = None if exc is None else str(exc) or type(exc).__name__
                    span.set_status(Status(StatusCode.ERROR, description))
            responses.decorate(response, span, self._rid)
            elapsed = time.perf_counter() - self._start
            if self._metrics is not None:  # while the span is current, for its exemplar
                self._metrics.record(elapsed, self._request.method, self._route, status)
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s %s %d",
                    self._request.method,
                    self._route or "(no route)",
                    status,
                    extra={"duration_ms": round(elapsed * 1000, 3)},
                )
        finally:
            if span is not None:
                span.end()
            if self._context_token is not None:
                otel_context.detach(self._context_token)
            if self._id_token is not None:
                request_id.unbind(self._id_token)
            deadline.unbind(self._deadline_token)
        return response
