"""``instrument_engine``: a span per statement, under the tracer provider passed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from cello_telemetry import instrument_engine


@pytest.fixture
def uninstrument() -> Iterator[None]:
    # The contrib instrumentor is one per process: undo it, so the next test starts clean.
    yield
    SQLAlchemyInstrumentor().uninstrument()


def test_statements_are_spans_of_the_tracer_provider_passed(uninstrument: None) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    instrument_engine(engine, tracer_provider=provider)

    async def main() -> None:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT :value"), {"value": "secret@example.com"})
        finally:
            await engine.dispose()

    asyncio.run(main())

    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    (span,) = [s for s in spans if s.name.startswith("SELECT")]
    attributes = dict(span.attributes or {})
    assert attributes["db.system"] == "sqlite"
    assert "secret@example.com" not in repr(attributes)  # placeholders, never values
