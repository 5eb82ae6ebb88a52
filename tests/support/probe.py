"""One request through a traced app, in a fresh process: what its pipeline produced.

The global tracer provider and the contrib instrumentations' semantic-convention mode are
set once per process, so tests that vary ``OTEL_*`` variables run this module as a child
process (``python -m support.probe``) with the variables in its environment. The request
runs a SQL statement (SQLAlchemy, instrumented), an INTERNAL span, a linked span with
three events, and a call through a ``TracedClient`` to a peer on loopback, on the
transport ``CELLO_HTTP_TRANSPORT`` names. The result is JSON on stdout: the spans exported,
what a user's own ``SpanProcessor`` on the global provider saw, the headers sent
downstream and the response's headers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from cello import Request
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cello_telemetry import App, OpenTelemetryConfig, TracedClient, instrument_engine, internal_span
from support.peer import Peer

LINKED = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))


class Recorder(SpanProcessor):
    """A user's own processor: notes every start and end."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.seen.append(["start", span.name])

    def on_end(self, span: ReadableSpan) -> None:
        self.seen.append(["end", span.name])


def _span(span: ReadableSpan) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "parent": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "events": len(span.events),
        "links": [f"{link.context.span_id:x}" for link in span.links],
    }


async def main(rate: float, headers: dict[str, str]) -> dict[str, Any]:
    async with Peer() as peer:
        return await _probe(rate, headers, peer)


async def _probe(rate: float, headers: dict[str, str], peer: Peer) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    app = App()
    app.enable_request_id()
    app.enable_telemetry(
        OpenTelemetryConfig(service_name="probe", sampling_rate=rate), exporter=exporter
    )
    recorder = Recorder()
    provider = trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):  # not with OTEL_SDK_DISABLED=true
        provider.add_span_processor(recorder)

    client = TracedClient(peer.url, peer_service="peer")
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    instrument_engine(engine)

    @app.get("/items/{id}")
    async def item(request: Request) -> dict[str, object]:
        with internal_span("work"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        tracer = trace.get_tracer("probe")
        with tracer.start_as_current_span("linked", links=[Link(LINKED)]) as span:
            for n in range(3):
                span.add_event(f"event {n}")
            for n in range(5):
                span.set_attribute(f"probe.attribute{n}", n)
        return {"peer": await client.call("GET", "/things/{id}", path_params={"id": 1})}

    headers = {"host": "probe:8000", **headers}
    request = Request("GET", "/items/1", params={"id": "1"}, headers=headers)
    response = await app.handler_for("GET", "/items/{id}")(request)
    await client.aclose()
    await engine.dispose()
    telemetry = app.telemetry
    assert telemetry is not None
    if telemetry.provider is not None:
        telemetry.provider.force_flush()
    return {
        "status": int(response.status),
        "response_headers": dict(response.headers),
        "sent": [seen.headers for seen in peer.requests],
        "spans": [_span(span) for span in exporter.get_finished_spans()],
        "seen": recorder.seen,
        "provider": type(trace.get_tracer_provider()).__module__,
    }


if __name__ == "__main__":
    rate = float(sys.argv[1])
    incoming = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(asyncio.run(main(rate, incoming))))
