"""``GET /health``, the same for every service."""

from __future__ import annotations

from typing import Any

from cello_telemetry import App


def add_health(app: App, service_name: str, **details: object) -> None:
    """Answer ``GET /health`` with 200, the service name and the span export counters.

    ``details`` are added to the answer (db adds ``demo_scenarios``); a callable one
    is called per probe, for a figure that changes (db's connection pool). The path is
    in ``excluded_paths``, so health probes make no traces.
    """

    @app.get("/health")
    def health(request: Any) -> dict[str, Any]:
        """Liveness, with the span export counters."""
        telemetry = app.telemetry.stats() if app.telemetry is not None else None
        shown = {key: value() if callable(value) else value for key, value in details.items()}
        return {"status": "ok", "service": service_name, **shown, "telemetry": telemetry}
