"""The stock OpenTelemetry SDK's own cost per operation, with no project code at all.

``python -m bench.floor`` prints one JSON object: CPU µs per operation (the median of
several rounds, each the calling thread's CPU time over many repetitions) for

- ``server_span``: extract the context from a ``traceparent`` header, start and end one
  SERVER span with nine attributes given at start, as a traced request does; the
  provider has a ``BatchSpanProcessor``, so ending the span queues it (its export
  thread runs beside and is not counted);
- ``encode``: encode finished spans to an OTLP request with the stock exporter's encoder
  and serialise it, in batches of 128 (the batch processor's ``maxExportBatchSize`` is
  512; the services send smaller batches at their request rates);
- ``unsampled``: the same as ``server_span`` under a sampler that drops everything;
- ``histogram``: record one ``http.server.request.duration`` measurement with the edge's
  attributes while a sampled span is current, so the SDK's default trace-based exemplar
  filter offers it to the bucket's exemplar reservoir, as the edge's record does;
- ``histogram_no_exemplar``: the same with the ``AlwaysOffExemplarFilter``.

This is the floor a traced request cannot go below with the SDK; ``make bench`` prints
it next to what the services add.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind

HEADERS = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
ATTRIBUTES = {
    "http.method": "GET",
    "http.route": "/users/{user_id}",
    "http.url": "http://127.0.0.1:8001/users/42",
    "http.scheme": "http",
    "net.host.name": "127.0.0.1",
    "net.host.port": 8001,
    "http.status_code": 200,
    "http.response_content_length": 96,
    "request.id": "5c4a3f0e-9b1d-4c55-8f5e-2b7a1c0d9e11",
}
# What the edge records per request (cello_telemetry.metrics), with its bucket boundaries.
METRIC_ATTRIBUTES = {
    "http.request.method": "GET",
    "http.response.status_code": 200,
    "url.scheme": "http",
    "http.route": "/users/{user_id}",
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
RESOURCE = Resource.create({"service.name": "floor"})
ROUNDS = 7


class _Discard(SpanExporter):
    """Accepts every batch and does nothing: only the request path is timed."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _per_op(run: Callable[[int], None], n: int) -> float:
    """Median over rounds of the calling thread's CPU µs per operation."""
    run(n // 10)  # warm-up
    samples = []
    for _ in range(ROUNDS):
        started = time.thread_time_ns()
        run(n)
        samples.append((time.thread_time_ns() - started) / n / 1000)
    return statistics.median(samples)


def _server_spans(sampler: Sampler) -> Callable[[int], None]:
    provider = TracerProvider(sampler=sampler, resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    tracer = provider.get_tracer("floor")

    def run(n: int) -> None:
        for _ in range(n):
            context = propagate.extract(HEADERS)
            with tracer.start_as_current_span(
                "GET /users/{user_id}", context=context, kind=SpanKind.SERVER,
                attributes=ATTRIBUTES,
            ):  # fmt: skip
                pass

    return run


def _encode() -> Callable[[int], None]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON, resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("floor")
    for _ in range(128):
        with tracer.start_as_current_span(
            "GET /users/{user_id}", context=propagate.extract(HEADERS), kind=SpanKind.SERVER,
            attributes=ATTRIBUTES,
        ):  # fmt: skip
            pass
    batch = memory.get_finished_spans()

    def run(n: int) -> None:
        for _ in range(max(1, n // len(batch))):
            encode_spans(batch).SerializeToString()

    return run


def _histogram(exemplar_filter: ExemplarFilter | None) -> Callable[[int], None]:
    """Records inside one sampled span; ``None`` is the SDK's default (trace-based) filter."""
    meters = MeterProvider([InMemoryMetricReader()], RESOURCE, exemplar_filter=exemplar_filter)
    duration = meters.get_meter("floor").create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=BUCKETS
    )
    tracer = TracerProvider(sampler=ALWAYS_ON, resource=RESOURCE).get_tracer("floor")

    def run(n: int) -> None:
        with tracer.start_as_current_span("GET /users/{user_id}", kind=SpanKind.SERVER):
            for _ in range(n):
                duration.record(0.002, METRIC_ATTRIBUTES)

    return run


def measure() -> dict[str, float]:
    """µs per operation for each of them."""
    return {
        "server_span": _per_op(_server_spans(ALWAYS_ON), 3000),
        "encode": _per_op(_encode(), 3072),
        "unsampled": _per_op(_server_spans(ALWAYS_OFF), 5000),
        "histogram": _per_op(_histogram(None), 20000),
        "histogram_no_exemplar": _per_op(_histogram(AlwaysOffExemplarFilter()), 20000),
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
