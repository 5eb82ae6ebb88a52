"""``GET /health``, the same for every service."""

from __future__ import annotations

from typing import Any

from cello_telemetry import App


def add_health(app: App, service_name: str, **details: object) -> None:
    """Answer ``GET /health`` with 200, the service name and the span export counters.

    ``details`` are added to the answer as they are (db adds ``demo_scenarios``).
    The path is in ``excluded_paths``, so health probes make no traces.
    """

    @app.get("/health")
    def health(request: Any) -> dict[str, Any]:
        """Liveness, with the span export counters."""
        telemetry = app.telemetry.stats() if app.telemetry is not None else None
        return {"status": "ok", "service": service_name, **details, "telemetry": telemetry}
