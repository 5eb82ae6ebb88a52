"""SQL spans for a SQLAlchemy engine.

Wraps the OpenTelemetry SQLAlchemy instrumentation so the database proxy gets a
span per statement (``db.system``, ``db.statement``, ``db.name``) as a child of
its SERVER span, without importing the SDK itself.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import AsyncEngine


def instrument_engine(engine: AsyncEngine) -> None:
    """Trace every statement ``engine`` runs, with the global tracer provider.

    Statements are recorded with their ``?`` placeholders, never with values, so
    no user data ends up in a span.
    """
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=trace.get_tracer_provider(),
        enable_commenter=False,
    )
