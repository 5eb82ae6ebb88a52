"""gateway settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services import config

SERVICE_NAME = "api-gateway"


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on; ``USERS_SERVICE_URL`` and ``USERS_TIMEOUT`` (s).

    ``USERS_TIMEOUT`` is longer than users' own ``DB_TIMEOUT``, so a slow db shows up
    as users' 504 (naming db) rather than as a gateway timeout.
    """

    host: str
    port: int
    users_url: str
    users_timeout: float
    otlp_endpoint: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=config.host(),
            port=config.port(8000),
            users_url=config.env_url("USERS_SERVICE_URL", "http://127.0.0.1:8001"),
            users_timeout=config.env_float("USERS_TIMEOUT", 4.0, minimum=0.1, maximum=60),
            otlp_endpoint=config.env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        )
