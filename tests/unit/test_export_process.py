"""The exporter process sends exactly what the SDK would have sent in-process."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from cello_telemetry.export_process import from_record, to_record

RESOURCE = Resource({"service.name": "unit", "host.name": "h"})


def _spans() -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("unit.scope", "1.2.3")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(0x01),
        trace_state=TraceState([("vendor", "v1"), ("other", "o2")]),
    )
    parent_context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span(
        "GET /users/{id}",
        context=parent_context,
        kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "http.status_code": 500, "ratio": 0.5, "ok": True},
    ) as server:
        server.add_event("checkpoint", {"n": 3})
        server.record_exception(ValueError("boom"))
        server.set_status(StatusCode.ERROR, "boom")
        with tracer.start_as_current_span("SELECT users", kind=SpanKind.CLIENT) as sql:
            sql.set_attribute("db.system", "sqlite")
    provider.shutdown()
    return exporter.get_finished_spans()


def test_rebuilt_spans_encode_to_the_same_otlp_bytes() -> None:
    spans = _spans()
    assert len(spans) == 2
    rebuilt = [from_record(to_record(span), RESOURCE) for span in spans]
    assert encode_spans(rebuilt).SerializeToString(deterministic=True) == encode_spans(
        list(spans)
    ).SerializeToString(deterministic=True)


def test_record_keeps_remote_parent_trace_state_and_events() -> None:
    server = next(span for span in _spans() if span.kind is SpanKind.SERVER)
    rebuilt = from_record(to_record(server), RESOURCE)
    assert rebuilt.parent is not None
    assert rebuilt.parent.is_remote
    assert rebuilt.parent.span_id == 0xB7AD6B7169203331
    assert rebuilt.context is not None
    assert list(rebuilt.context.trace_state.items()) == [("vendor", "v1"), ("other", "o2")]
    assert [event.name for event in rebuilt.events] == ["checkpoint", "exception"]
    assert rebuilt.status.status_code is StatusCode.ERROR
    assert rebuilt.status.description == "boom"


def test_every_public_name_resolves() -> None:
    import cello_telemetry

    for name in cello_telemetry.__all__:
        assert getattr(cello_telemetry, name).__name__ == name


def test_the_exporter_process_imports_neither_cello_nor_sqlalchemy_nor_httpx() -> None:
    # It starts with every service; its start-up time is how long the first
    # spans wait.
    import subprocess
    import sys

    code = (
        "import sys, cello_telemetry.export_process, cello_telemetry.otlp_grpc;"
        "print(sorted(m for m in ('cello', 'sqlalchemy', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
