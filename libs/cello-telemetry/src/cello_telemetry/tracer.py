"""A lean implementation of the OpenTelemetry tracing API for the request path.

The SDK's ``Span`` does a lot per span that a service pays for on every request:
attribute validation under a lock, bounded containers, a second ``ReadableSpan``
copy at ``end()``, and sampler result objects. Measured on this project's services
(``make bench``) that is most of the tracing cost. These classes implement the same
API (so the SQLAlchemy instrumentation and any other API user work unchanged) with
plain slots, and decide sampling before allocating anything:

- sampling follows the SDK's samplers exactly (``ParentBased``, ``TraceIdRatioBased``
  with the SDK's own bound), so a trace is kept or dropped as the SDK would;
- an unsampled span is a ``NonRecordingSpan`` carrying fresh ids, nothing more;
- an ended span goes to the span processor as is; exporters get SDK
  ``ReadableSpan`` objects (see :mod:`cello_telemetry.export_process`), so the OTLP
  encoding is still the SDK's.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util.types import AttributeValue

logger = logging.getLogger(__name__)

_TRACE_ID_LIMIT = (1 << 64) - 1
_RANDOM = TraceFlags.RANDOM_TRACE_ID
_PRIMITIVES = (str, bool, int, float)


class Sampling:
    """The decision of an SDK sampler, made without creating any objects.

    Args:
        sampler: a standard ``OTEL_TRACES_SAMPLER`` name.
        ratio: the ratio for the ``*traceidratio`` samplers.
    """

    def __init__(self, sampler: str, ratio: float) -> None:
        self.parent_based = sampler.startswith("parentbased_")
        root = sampler.removeprefix("parentbased_")
        if root == "always_on":
            self._bound = _TRACE_ID_LIMIT + 1
        elif root == "always_off":
            self._bound = 0
        else:
            self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        self.description = f"{sampler}({ratio})" if root == "traceidratio" else sampler

    def sampled(self, trace_id: int, parent: SpanContext | None) -> bool:
        """Whether a span of ``trace_id`` under ``parent`` (``None``: a root) is kept."""
        if self.parent_based and parent is not None:
            return parent.trace_flags.sampled
        return trace_id & _TRACE_ID_LIMIT < self._bound


class LeanSpan(trace.Span):
    """A recording span: plain attributes, events and status until ``end()``."""

    __slots__ = (
        "_ended",
        "_processor",
        "attributes",
        "context",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        start_time: int,
        scope: InstrumentationScope,
        resource: Resource,
        processor: SpanProcessor,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.start_time = start_time
        self.end_time: int | None = None
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.status = Status(StatusCode.UNSET)
        self.instrumentation_scope = scope
        self.resource = resource
        self._processor = processor
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        if self._ended:
            return
        clean = _clean(value)
        if clean is not None:
            self.attributes[key] = clean

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> None:
        if self._ended:
            return
        cleaned = {k: c for k, v in (attributes or {}).items() if (c := _clean(v)) is not None}
        self.events.append((name, timestamp or time.time_ns(), cleaned))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        pass  # nothing in this project links spans; accepted and ignored

    def update_name(self, name: str) -> None:
        if not self._ended:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As in the SDK: OK is final, and a description only goes with ERROR.
        if self._ended or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            self.status = status
        else:
            self.status = Status(status, description if status is StatusCode.ERROR else None)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # The attributes the SDK records, so backends show the same exception event.
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": qualname if module in ("", "builtins") else f"{module}.{qualname}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        event.update(attributes or {})
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.end_time = end_time or time.time_ns()
        self._processor.on_end(self)  # type: ignore[arg-type]  # see export_process.to_record


def _clean(value: Any) -> AttributeValue | None:
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        items = tuple(value)
        if all(isinstance(item, _PRIMITIVES) for item in items):
            return items
    return None  # None and anything OTLP cannot carry are dropped, as the SDK does


class LeanTracer(trace.Tracer):
    """Starts :class:`LeanSpan` objects, or non-recording spans when unsampled."""

    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._scope = scope

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and not parent.is_valid:
            parent = None
        span = self.start_child(name, parent, kind)
        if attributes and isinstance(span, LeanSpan):
            span.set_attributes(attributes)
        if start_time is not None and isinstance(span, LeanSpan):
            span.start_time = start_time
        return span

    def start_child(
        self, name: str, parent: SpanContext | None, kind: SpanKind = SpanKind.INTERNAL
    ) -> trace.Span:
        """Start a span under ``parent`` (``None``: a new trace); the server's fast path.

        Unsampled, this is a ``NonRecordingSpan`` with fresh ids: enough to answer with a
        ``traceparent`` and to propagate the decision downstream, at almost no cost.
        """
        provider = self._provider
        if parent is None:
            trace_id, flags, trace_state = _new_trace_id(), 0, None
        else:
            # Level 2 "random-trace-id" flag: passed on as the caller set it.
            trace_id, flags, trace_state = (
                parent.trace_id,
                parent.trace_flags & _RANDOM,
                parent.trace_state,
            )
        sampled = provider.sampling.sampled(trace_id, parent)
        span_context = SpanContext(
            trace_id,
            random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=TraceFlags(flags | sampled),
            trace_state=trace_state,
        )
        if not sampled or provider.processor is None:
            return NonRecordingSpan(span_context)
        return LeanSpan(
            name,
            span_context,
            parent,
            kind,
            {},
            time.time_ns(),
            self._scope,
            provider.resource,
            provider.processor,
        )

    @contextmanager  # the API's own decorator for this is private
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def _new_trace_id() -> int:
    return random.getrandbits(128) or 1


class LeanTracerProvider(trace.TracerProvider):
    """Hands out :class:`LeanTracer` objects sharing one resource, sampler and processor."""

    def __init__(
        self, resource: Resource, sampling: Sampling, processor: SpanProcessor | None
    ) -> None:
        self.resource = resource
        self.sampling = sampling
        self.processor = processor
        self._tracers: dict[tuple[str, str | None], LeanTracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> LeanTracer:
        key = (instrumenting_module_name, instrumenting_library_version)
        tracer = self._tracers.get(key)
        if tracer is None:
            scope = InstrumentationScope(
                instrumenting_module_name, instrumenting_library_version, schema_url
            )
            tracer = self._tracers[key] = LeanTracer(self, scope)
        return tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every ended span now."""
        return self.processor.force_flush(timeout_millis) if self.processor else True

    def shutdown(self) -> None:
        """Flush (bounded by the processor) and stop exporting."""
        if self.processor is not None:
            self.processor.shutdown()
