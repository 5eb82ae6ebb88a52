"""The edge's request histogram: ``http.server.request.duration``, for every request.

Recorded for each request the edge answers, sampled or not, so its counts are exact
whatever share of the traces is kept. Name, unit, attributes and bucket boundaries are
the stable HTTP semantic conventions', whatever ``OTEL_SEMCONV_STABILITY_OPT_IN`` says
about span attributes: a dashboard reads one series name from every service. The
measurement carries the current context, so the SDK's trace-based exemplar filter ties a
bucket to the sampled trace that fell in it.
"""

from __future__ import annotations

from typing import Final

from opentelemetry import metrics
from opentelemetry.semconv.attributes import http_attributes as http
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.url_attributes import URL_SCHEME
from opentelemetry.semconv.metrics.http_metrics import HTTP_SERVER_REQUEST_DURATION
from opentelemetry.util.types import AttributeValue

#: The bucket boundaries the semantic conventions advise for HTTP durations, in seconds.
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
)  # fmt: skip


class ServerMetrics:
    """The edge's instruments, made once per app from its meter."""

    __slots__ = ("_duration",)

    def __init__(self, meter: metrics.Meter) -> None:
        self._duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def record(self, seconds: float, method: str, route: str | None, status: int) -> None:
        """Record one answered request; call it while the request's span is current.

        ``route`` is ``None`` for a request no route took: ``http.route`` is then left
        off, as on its span, so unknown paths never become series of their own.
        """
        attributes: dict[str, AttributeValue] = {
            http.HTTP_REQUEST_METHOD: method,
            http.HTTP_RESPONSE_STATUS_CODE: status,
            URL_SCHEME: "http",
        }
        if route is not None:
            attributes[http.HTTP_ROUTE] = route
        if status >= 500:
            attributes[ERROR_TYPE] = str(status)  # as on the span
        self._duration.record(seconds, attributes)
