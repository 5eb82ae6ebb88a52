"""``GET /health``, ``/health/live`` and ``/health/ready``, the same for every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cello_telemetry import App


def add_health(
    app: App,
    service_name: str,
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
    **details: object,
) -> None:
    """Answer ``/health`` (status and figures), ``/health/live`` and ``/health/ready``.

    ``/health`` answers 200 with the service name and the span export counters, for
    people and tools. ``details`` are added to it (db adds ``demo_scenarios``); a
    callable one is called per probe, for a figure that changes (db's connection pool).

    ``/health/live`` answers 200 while the process serves at all: a liveness probe
    restarts a service only when it is wedged. ``/health/ready`` awaits ``ready``, which
    raises an ``HTTPError`` (a 503) while the service should get no traffic, such as
    db with no free connection; without ``ready`` a service is ready once it serves.
    The three paths are in ``excluded_paths`` by default, so probes make no traces.
    """

    @app.get("/health")
    def health(request: Any) -> dict[str, Any]:
        """The service, its figures and the span export counters."""
        telemetry = app.telemetry.stats() if app.telemetry is not None else None
        shown = {key: value() if callable(value) else value for key, value in details.items()}
        return {"status": "ok", "service": service_name, **shown, "telemetry": telemetry}

    @app.get("/health/live")
    def live(request: Any) -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "alive", "service": service_name}

    @app.get("/health/ready")
    async def readiness(request: Any) -> dict[str, str]:
        """Readiness: the service can do its work now (503 problem if not)."""
        if ready is not None:
            await ready()
        return {"status": "ready", "service": service_name}
