"""Small tracing helpers for service code: an INTERNAL span, no spans, reading baggage.

Services never import OpenTelemetry; when a piece of work inside a handler deserves
its own span, or a handler needs a baggage entry the caller sent, they use these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import baggage, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from .telemetry import INSTRUMENTATION_NAME


@contextmanager
def internal_span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[None]:
    """Run the ``with`` block inside an INTERNAL span, a child of the current span.

    An exception leaving the block is recorded on the span, which is then ERROR,
    and propagates unchanged.

    Args:
        name: the span name, e.g. ``"demo: injected latency"``.
        attributes: set on the span when it starts.
        tracer_provider: defaults to the global one that ``enable_telemetry`` set
            (tests pass their own).
    """
    tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
    with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL, attributes=attributes):
        yield


@contextmanager
def untraced() -> Iterator[None]:
    """Run the ``with`` block without spans from the contrib instrumentations.

    For work that is not a request's, such as a readiness probe's check query: it
    would otherwise start a trace of its own every few seconds.
    """
    with suppress_instrumentation():
        yield


def baggage_value(key: str) -> str | None:
    """The current request's W3C baggage entry ``key``, or ``None`` when absent.

    Baggage comes from the caller and may hold anything: compare the value with
    known ones rather than trusting it.
    """
    value = baggage.get_baggage(key)
    return None if value is None else str(value)
