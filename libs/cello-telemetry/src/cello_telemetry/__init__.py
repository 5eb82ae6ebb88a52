"""Tracing for Cello apps, on the OpenTelemetry SDK.

Service code uses this package exactly as Cello's documentation uses ``cello``::

    from cello_telemetry import App, OpenTelemetryConfig

    app = App()
    app.enable_request_id()
    app.enable_telemetry(OpenTelemetryConfig(service_name="api-gateway"))

and calls the next service through :class:`TracedClient`. :func:`internal_span`,
:func:`untraced` and :func:`baggage_value` cover the rest a handler may need (and
:mod:`cello_telemetry.deadline` the caller's deadline), :func:`instrument_engine` gives
a SQLAlchemy engine a span per statement, and :class:`JsonFormatter` writes log lines
that lead to their span. The ``OTEL_*`` variables configure the rest. Underneath are the
stock OpenTelemetry SDK, OTLP exporter, propagators and contrib instrumentations;
nothing outside this package touches the SDK.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import App as App
    from .client import TracedClient as TracedClient
    from .config import OpenTelemetryConfig as OpenTelemetryConfig
    from .config import TelemetryConfigError as TelemetryConfigError
    from .logs import JsonFormatter as JsonFormatter
    from .sql import instrument_engine as instrument_engine
    from .tracing import baggage_value as baggage_value
    from .tracing import internal_span as internal_span
    from .tracing import untraced as untraced

# Names are imported on first use (PEP 562): a service without a database must not
# need SQLAlchemy and its instrumentation, which only instrument_engine uses.
_EXPORTS = {
    "App": ".app",
    "JsonFormatter": ".logs",
    "OpenTelemetryConfig": ".config",
    "TelemetryConfigError": ".config",
    "TracedClient": ".client",
    "baggage_value": ".tracing",
    "instrument_engine": ".sql",
    "internal_span": ".tracing",
    "untraced": ".tracing",
}

__all__ = [
    "App",
    "JsonFormatter",
    "OpenTelemetryConfig",
    "TelemetryConfigError",
    "TracedClient",
    "baggage_value",
    "instrument_engine",
    "internal_span",
    "untraced",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
