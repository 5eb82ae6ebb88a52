"""Start one service: read its settings, build its app, serve until stopped.

A service's ``__main__.py`` is one call::

    serve(Settings.from_env, create_app)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol

from cello import LimitsConfig

from cello_telemetry import App, TelemetryConfigError
from cello_telemetry.logs import configure_logging

from .env import ConfigError


class ServiceSettings(Protocol):
    """What :func:`serve` needs of a service's settings: where to listen."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def serve[S: ServiceSettings](load: Callable[[], S], build: Callable[[S], App]) -> None:
    """Run the service built by ``build(load())`` in the foreground.

    A configuration error ends the process at once with exit status 2 and a
    one-line message, before anything listens on the port.
    """
    try:
        settings = load()
        app = build(settings)
    except (ConfigError, TelemetryConfigError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # JSON log lines with trace_id, span_id and request.id; the library installs nothing itself.
    if app.telemetry is not None:
        configure_logging(app.telemetry.settings.service_name)
    # Bodies are parsed (and answered with a 413 problem) up to payload.MAX_BODY_BYTES;
    # Cello refuses anything over 1 MiB before buffering it at all.
    app.set_limits(LimitsConfig(max_body_size=1024 * 1024))
    # One worker: each service is one process (scale by running more of them), and
    # Cello's own access log is off because the telemetry package writes a JSON one.
    app.run(host=settings.host, port=settings.port, workers=1, debug=False, logs=False)
