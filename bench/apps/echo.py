"""The smallest traced service: one async GET returning a small dict, plus ``/health``.

Run as ``python bench/apps/echo.py`` with ``PORT`` set. ``BENCH_PLAIN=1`` builds a bare
``cello.App`` (no wrapper at all: the floor); otherwise a ``cello_telemetry.App`` that
is configured, like the real services, entirely by the standard ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
from typing import Any

import cello

from cello_runner import add_health, configure_logging
from cello_telemetry import App, OpenTelemetryConfig


def create_app(plain: bool) -> cello.App:
    """The echo app, bare or traced."""
    if plain:
        app = cello.App()

        @app.get("/health")
        def health(request: Any) -> dict[str, Any]:
            return {"status": "ok", "service": "echo-plain", "telemetry": None}

    else:
        app = App()
        app.enable_request_id()
        app.enable_telemetry(OpenTelemetryConfig(service_name="echo"))
        add_health(app, "echo")

    @app.get("/")
    async def echo(request: Any) -> dict[str, Any]:
        return {"message": "hello", "path": request.path}

    return app


if __name__ == "__main__":
    plain = os.environ.get("BENCH_PLAIN") == "1"
    if not plain:  # the JSON log at LOG_LEVEL, installed as serve.py does for the services
        configure_logging("echo")
    # Cello's access log is off, as in the real services (serve.py): we measure tracing.
    create_app(plain).run(
        host="127.0.0.1", port=int(os.environ["PORT"]), workers=1, debug=False, logs=False
    )
