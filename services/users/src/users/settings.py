"""users settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services import config

SERVICE_NAME = "user-service"


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on; ``DB_SERVICE_URL`` and ``DB_TIMEOUT`` (seconds)."""

    host: str
    port: int
    db_url: str
    db_timeout: float
    otlp_endpoint: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=config.host(),
            port=config.port(8001),
            db_url=config.env_url("DB_SERVICE_URL", "http://127.0.0.1:8002"),
            db_timeout=config.env_float("DB_TIMEOUT", 2.0, minimum=0.1, maximum=60),
            otlp_endpoint=config.env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        )
