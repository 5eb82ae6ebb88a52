"""users settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cello_telemetry import env

SERVICE_NAME = "user-service"

RECORDED_BAGGAGE = ("demo.session", "demo.scenario")
"""W3C baggage entries recorded on this service's SERVER spans as ``baggage.<key>``:
the demo session a request belongs to, and the fault scenario it asks db for."""


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on; the db proxy at ``DB_SERVICE_URL``
    (``http://127.0.0.1:8002``), known in traces as ``DB_SERVICE_NAME`` (``db-proxy``),
    answering within ``DB_TIMEOUT`` seconds (2)."""

    host: str
    port: int
    db_url: str
    db_service: str
    db_timeout: float
    otlp_endpoint: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=env.host(),
            port=env.port(8001),
            db_url=env.env_url("DB_SERVICE_URL", "http://127.0.0.1:8002"),
            db_service=env.env_str("DB_SERVICE_NAME", "db-proxy"),
            db_timeout=env.env_float("DB_TIMEOUT", 2.0, minimum=0.1, maximum=60),
            otlp_endpoint=env.env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        )
