"""The hand-written OTLP encoder produces what the SDK's encoder produces."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from cello_telemetry.export_process import from_record, to_record
from cello_telemetry.otlp_wire import encode_request
from cello_telemetry.tracer import LeanTracerProvider, Sampling

RESOURCE = Resource(
    {"service.name": "unit", "service.version": "1.0", "host.name": "h", "pid": 42},
    schema_url="",
)


class _Collect:
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _lean_spans() -> list[ReadableSpan]:
    processor = _Collect()
    provider = LeanTracerProvider(RESOURCE, Sampling("always_on", 1.0), processor)  # type: ignore[arg-type]
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(0x01),
        trace_state=TraceState([("vendor", "v1"), ("other", "o2")]),
    )
    server_tracer = provider.get_tracer("cello_telemetry")
    sql_tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", "0.66b1")
    with server_tracer.start_as_current_span(
        "GET /users/{id}",
        context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        attributes={
            "http.method": "GET",
            "http.status_code": 500,
            "negative": -7,
            "big": 2**62,
            "ratio": 0.25,
            "ok": True,
            "off": False,
            "empty": "",
            "ünïcode": "naïve ✓",
            "list": ["a", "b"],
            "ints": (1, 2, 3),
        },
    ) as server:
        server.add_event("checkpoint", {"n": 3})
        server.record_exception(ValueError("boom"))
        server.set_status(StatusCode.ERROR, "boom")
        with sql_tracer.start_as_current_span("SELECT users.db", kind=SpanKind.CLIENT) as sql:
            sql.set_attribute("db.statement", "SELECT id FROM users WHERE id = ?")
        with server_tracer.start_as_current_span("internal") as inner:
            inner.set_status(StatusCode.OK)
    with server_tracer.start_as_current_span("root, no parent", kind=SpanKind.CLIENT):
        pass
    return processor.spans


def test_wire_encoding_matches_the_sdk_field_for_field() -> None:
    spans = _lean_spans()
    assert len(spans) == 4
    records = [to_record(span) for span in spans]
    ours = ExportTraceServiceRequest.FromString(encode_request(records, RESOURCE.attributes))
    sdk = encode_spans([from_record(record, RESOURCE) for record in records])
    assert ours == sdk
    assert len(ours.resource_spans[0].scope_spans) == 2  # grouped by scope, as the SDK does


def test_wire_encoding_is_byte_identical_to_the_sdk() -> None:
    records = [to_record(span) for span in _lean_spans()]
    sdk = encode_spans([from_record(record, RESOURCE) for record in records])
    assert encode_request(records, RESOURCE.attributes) == sdk.SerializeToString()


def test_unencodable_values_are_refused_loudly() -> None:
    record = to_record(_lean_spans()[0])
    broken = (*record[:13], {"x": object()}, *record[14:])
    with pytest.raises(TypeError, match="object"):
        encode_request([broken], RESOURCE.attributes)
