"""db settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services import config

from .scenarios import DemoSettings

SERVICE_NAME = "db-proxy"


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
        url = config.env_str("DATABASE_URL", "sqlite+aiosqlite:///./data/users.db")
        if not url.startswith("sqlite+aiosqlite://"):
            raise config.ConfigError(
                f"DATABASE_URL={url!r} must be a sqlite+aiosqlite:// URL (the proxy runs SQLite)"
            )
        return cls(
            host=config.host(),
            port=config.port(8002),
            database_url=url,
            otlp_endpoint=config.env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
            demo=DemoSettings.from_env(),
        )
