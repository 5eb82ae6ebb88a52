"""SQL spans for a SQLAlchemy engine.

Wraps the OpenTelemetry SQLAlchemy instrumentation so the database proxy gets a
span per statement (``db.system``, ``db.statement``, ``db.name``) as a child of
its SERVER span, without importing the SDK itself.
"""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import AsyncEngine


def instrument_engine(
    engine: AsyncEngine,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Trace every statement ``engine`` runs.

    Statements are recorded with their ``?`` placeholders, never with values, so
    no user data ends up in a span.

    Args:
        engine: the engine whose statements become spans.
        tracer_provider: defaults to the global one that ``enable_telemetry`` set.
        meter_provider: for the instrumentation's connection-pool metrics; defaults to
            the global one.
    """
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        enable_commenter=False,
    )
