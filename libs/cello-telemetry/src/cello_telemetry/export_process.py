"""Span export from a child process, so OTLP encoding never holds the service's GIL.

Encoding a span to OTLP protobuf costs the SDK tens of microseconds, more than the
rest of tracing a request together, and an export batch holds the GIL while it runs,
stalling requests. So the service only turns each finished span into a compact tuple
and pickles batches down a pipe; a child process rebuilds the SDK's ``ReadableSpan``
objects and hands them to the SDK's own OTLP exporter. The bytes on the wire are the
SDK's, field for field.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from .config import ResolvedTelemetry
from .otlp_wire import encode_request
from .tracer import LeanSpan

logger = logging.getLogger(__name__)

_FRAME = struct.Struct("<I")

# (scope name, scope version, scope schema url, name, trace id, span id, flags,
#  tracestate members, parent span id or None, parent is remote, kind, start ns,
#  end ns, attributes, status code, status description, events as (name, ns, attributes))
Record = tuple[Any, ...]


def to_record(span: ReadableSpan | LeanSpan) -> Record:
    """The fields of ``span`` that OTLP carries, as plain picklable values."""
    context = span.context
    assert context is not None  # an ended span always has one
    parent = span.parent
    scope = span.instrumentation_scope
    if isinstance(span, LeanSpan):
        events = tuple(span.events)
    else:
        events = tuple((e.name, e.timestamp, dict(e.attributes or {})) for e in span.events)
    return (
        scope.name if scope else "",
        scope.version if scope else None,
        scope.schema_url if scope else None,
        span.name,
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        tuple(context.trace_state.items()) if context.trace_state else (),
        parent.span_id if parent is not None else None,
        parent.is_remote if parent is not None else False,
        span.kind.value,
        span.start_time,
        span.end_time,
        dict(span.attributes) if span.attributes else {},
        span.status.status_code.value,
        span.status.description,
        events,
    )


def from_record(record: Record, resource: Resource) -> ReadableSpan:
    """Rebuild the ``ReadableSpan`` that :func:`to_record` was given."""
    (scope_name, scope_version, scope_url, name, trace_id, span_id, flags, state,
     parent_id, parent_remote, kind, start, end, attributes, status_code,
     status_description, events) = record  # fmt: skip
    trace_state = TraceState(list(state)) if state else None
    context = SpanContext(trace_id, span_id, False, TraceFlags(flags), trace_state)
    parent = (
        SpanContext(trace_id, parent_id, parent_remote, TraceFlags(flags))
        if parent_id is not None
        else None
    )
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        events=[Event(n, attributes=a, timestamp=t) for n, t, a in events],
        kind=SpanKind(kind),
        status=Status(StatusCode(status_code), status_description),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(scope_name, scope_version, scope_url),
    )


def _write(stream: IO[bytes], message: object) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)  # only ever our own parent or child on a private pipe


class ReadableSpanExporter(SpanExporter):
    """Give an SDK exporter the ``ReadableSpan`` objects it expects.

    The request path produces :class:`~cello_telemetry.tracer.LeanSpan` objects; an
    exporter running in this process (in-memory in tests, OTLP with
    ``CELLO_TELEMETRY_EXPORT=inline``) gets them rebuilt as SDK spans.
    """

    def __init__(self, exporter: SpanExporter, resource: Resource) -> None:
        self._exporter = exporter
        self._resource = resource

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export(
            [
                span
                if isinstance(span, ReadableSpan)
                else from_record(to_record(span), self._resource)
                for span in spans
            ]
        )

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class ProcessSpanExporter(SpanExporter):
    """A ``SpanExporter`` whose ``export`` ships batches to an exporter process.

    ``export`` blocks its caller (the batch thread, never a request) until the child
    reports the outcome, so success and failure are counted exactly as in-process.
    A child that died is started again on the next batch.
    """

    def __init__(self, settings: ResolvedTelemetry, resource: Resource) -> None:
        self._settings = settings
        self._resource = resource
        self._lock = threading.Lock()
        # Started now, so its imports are done before the first batch is due.
        self._child: subprocess.Popen[bytes] | None = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-m", "cello_telemetry.export_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert child.stdin is not None
        _write(child.stdin, (self._settings, dict(self._resource.attributes)))
        return child

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        records = [to_record(span) for span in spans]
        with self._lock:
            try:
                if self._child is None or self._child.poll() is not None:
                    self._child = self._start()
                assert self._child.stdin is not None
                assert self._child.stdout is not None
                _write(self._child.stdin, records)
                ok = _read(self._child.stdout)
            except (OSError, EOFError, pickle.PickleError):
                logger.warning("span exporter process failed; starting a new one")
                self._child = None
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self, timeout_millis: int = 5000) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        try:
            assert child.stdin is not None
            _write(child.stdin, None)
            child.wait(timeout_millis / 1000)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # export() returns only once the child has sent the batch


def _record_sender(settings: ResolvedTelemetry, resource: Resource) -> _Sender:
    """How the child sends a batch of records: encoded here for OTLP/gRPC, else via the SDK."""
    if settings.protocol == "grpc":
        from .otlp_grpc import RecordGrpcExporter

        grpc_exporter = RecordGrpcExporter(settings)

        def send_encoded(batch: list[Record]) -> SpanExportResult:
            payload = encode_request(batch, resource.attributes)
            return grpc_exporter.export_encoded(payload, len(batch))

        return send_encoded, grpc_exporter
    from .provider import build_exporter

    sdk_exporter = build_exporter(settings)

    def send_spans(batch: list[Record]) -> SpanExportResult:
        return sdk_exporter.export([from_record(record, resource) for record in batch])

    return send_spans, sdk_exporter


_Sender = tuple[Callable[[list[Record]], SpanExportResult], SpanExporter]


def _child_main() -> None:
    # The parent decides when to stop and sends a final batch first: a Ctrl-C or
    # SIGTERM meant for the service must not kill its exporter before that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe

    settings, resource_attributes = _read(requests)
    send, exporter = _record_sender(settings, Resource(resource_attributes))
    try:
        while (batch := _read(requests)) is not None:
            _write(replies, send(batch) is SpanExportResult.SUCCESS)
    except EOFError:
        pass  # the service is gone
    finally:
        exporter.shutdown()


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("LOG_LEVEL", "WARNING"))
    _child_main()
