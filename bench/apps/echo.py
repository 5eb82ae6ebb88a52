"""The smallest traced service: one async GET returning a small dict, plus ``/health``.

Run as ``python bench/apps/echo.py`` with ``PORT`` set: a ``cello_telemetry.App``
set up exactly as the Cello docs show, and configured, like the real services, by the
standard ``OTEL_*`` variables alone (``OTEL_SDK_DISABLED=true``: tracing off), and run
as they are (``cello_runner.serve``: JSON log lines on stderr and the OTLP log handler,
at ``LOG_LEVEL``). The bare ``cello.App`` floor is ``bench/apps/component.py``'s ``bare``.
"""

from __future__ import annotations

import os
from typing import Any

from cello_runner import serve
from cello_telemetry import App, OpenTelemetryConfig


def create_app() -> App:
    """The echo app, traced as a service is."""
    app = App()
    app.enable_request_id()
    app.enable_telemetry(OpenTelemetryConfig(service_name="echo"))

    @app.get("/")
    async def echo(request: Any) -> dict[str, Any]:
        return {"message": "hello", "path": request.path}

    @app.get("/health")
    def health(request: Any) -> dict[str, Any]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    serve(create_app(), host="127.0.0.1", port=int(os.environ["PORT"]))
