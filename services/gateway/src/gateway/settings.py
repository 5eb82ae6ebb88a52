"""gateway settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from cello_settings import env_flag, env_float, env_str, env_url, host, port

SERVICE_NAME = "api-gateway"

RECORDED_BAGGAGE = ("demo.session", "demo.scenario")
"""W3C baggage entries recorded on this service's SERVER spans as ``baggage.<key>``:
the demo session a request belongs to, and the fault scenario it asks db for."""

SESSION_HEADER = "X-Demo-Session"
SESSION_BAGGAGE = "demo.session"
"""A client names its session in this plain header; the gateway makes it baggage."""


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on; the users service at ``USERS_SERVICE_URL``
    (``http://127.0.0.1:8001``), known in traces as ``USERS_SERVICE_NAME``
    (``user-service``), answering within ``USERS_TIMEOUT`` seconds (4).

    ``USERS_TIMEOUT`` is longer than users' own ``DB_TIMEOUT``, so a slow db shows up
    as users' 504 (naming db) rather than as a gateway timeout.

    ``TRUST_INCOMING_TRACE`` (default ``0``): the gateway is the public edge, so a
    client's ``traceparent`` is only a link on a new trace; ``1`` makes the gateway
    continue it, sampled flag included, for a gateway behind another traced service
    of yours.
    """

    host: str
    port: int
    users_url: str
    users_service: str
    users_timeout: float
    trust_incoming_trace: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            host=host(),
            port=port(8000),
            users_url=env_url("USERS_SERVICE_URL", "http://127.0.0.1:8001"),
            users_service=env_str("USERS_SERVICE_NAME", "user-service"),
            users_timeout=env_float("USERS_TIMEOUT", 4.0, minimum=0.1, maximum=60),
            trust_incoming_trace=env_flag("TRUST_INCOMING_TRACE", False),
        )
