"""Tracing for Cello services, on the OpenTelemetry SDK.

Service code uses this package exactly as Cello's documentation uses ``cello``::

    from cello_telemetry import App, OpenTelemetryConfig

    app = App()
    app.enable_request_id()
    app.enable_telemetry(OpenTelemetryConfig(
        service_name="api-gateway",
        otlp_endpoint="http://collector:4317",
        sampling_rate=0.1,
    ))

and calls the next service through :class:`TracedClient`. :func:`internal_span` and
:func:`baggage_value` cover the rest a handler may need. Nothing outside this
package touches the OpenTelemetry SDK.
"""

from .client import TracedClient
from .config import OpenTelemetryConfig, TelemetryConfigError
from .errors import HTTPError
from .server import App
from .sql import instrument_engine
from .tracing import baggage_value, internal_span

__all__ = [
    "App",
    "HTTPError",
    "OpenTelemetryConfig",
    "TelemetryConfigError",
    "TracedClient",
    "baggage_value",
    "instrument_engine",
    "internal_span",
]
