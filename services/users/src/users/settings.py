"""users settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cello_settings import env_float, env_str, env_url, host, port

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

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=host(),
            port=port(8001),
            db_url=env_url("DB_SERVICE_URL", "http://127.0.0.1:8002"),
            db_service=env_str("DB_SERVICE_NAME", "db-proxy"),
            db_timeout=env_float("DB_TIMEOUT", 2.0, minimum=0.1, maximum=60),
        )
