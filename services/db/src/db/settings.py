"""db settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cello_telemetry import env

from .scenarios import DemoSettings

SERVICE_NAME = "db-proxy"

RECORDED_BAGGAGE = ("demo.session", "demo.scenario")
"""W3C baggage entries recorded on this service's SERVER spans as ``baggage.<key>``:
the demo session a request belongs to, and the fault scenario it asks db for."""


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on and the ``DATABASE_URL`` to serve.

    ``DATABASE_URL`` defaults to a SQLite file under ``./data/``; any SQLAlchemy
    async URL works, e.g. ``sqlite+aiosqlite:////var/lib/db/users.db``. ``demo``
    holds the fault scenarios' switch, off unless ``DEMO_SCENARIOS=1``.
    """

    host: str
    port: int
    database_url: str
    otlp_endpoint: str
    demo: DemoSettings

    @classmethod
    def from_env(cls) -> Settings:
        url = env.env_str("DATABASE_URL", "sqlite+aiosqlite:///./data/users.db")
        if not url.startswith("sqlite+aiosqlite://"):
            raise env.ConfigError(
                f"DATABASE_URL={url!r} must be a sqlite+aiosqlite:// URL (the proxy runs SQLite)"
            )
        return cls(
            host=env.host(),
            port=env.port(8002),
            database_url=url,
            otlp_endpoint=env.env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
            demo=DemoSettings.from_env(),
        )
