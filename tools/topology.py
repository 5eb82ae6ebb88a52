"""Where the native stack answers: its ports, URLs and service names, from deploy/.env.

deploy/.env is the one place they are written. deploy/stack.sh starts every part of the
native stack on those ports, compose publishes the shared ones, and the tools and the
tests read them here::

    from tools.topology import topology

    topology().gateway_url      # http://127.0.0.1:8000
    topology().services         # ('api-gateway', 'user-service', 'db-proxy')

Each tool still lets its own variable (``GATEWAY_URL``, ``JAEGER_URL``...) point it
elsewhere; these are the defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DOTENV = Path(__file__).resolve().parents[1] / "deploy" / ".env"
#: The native stack binds loopback only.
HOST = "127.0.0.1"


def read_dotenv(path: Path = DOTENV) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of ``path``; blank lines and ``#`` comments skipped.

    That is all of the format deploy/.env uses, and what both compose and stack.sh read
    the same way: no quotes, no ``export``, no interpolation.
    """
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True, slots=True)
class Topology:
    """The native stack's ports and service names (see deploy/.env for each key)."""

    gateway_port: int
    users_port: int
    db_port: int
    jaeger_ui_port: int
    zipkin_ui_port: int
    victorialogs_port: int
    victoriametrics_port: int
    spanmetrics_port: int
    otlp_grpc_port: int
    gateway_service: str
    users_service: str
    db_service: str

    @classmethod
    def from_dotenv(cls, values: Mapping[str, str]) -> Topology:
        """Read from deploy/.env's keys; a missing or non-numeric port raises ValueError."""

        def port(key: str) -> int:
            if not values.get(key, "").isdigit():
                raise ValueError(f"deploy/.env: {key} must be a port number")
            return int(values[key])

        def name(key: str) -> str:
            if not values.get(key):
                raise ValueError(f"deploy/.env: {key} is not set")
            return values[key]

        return cls(
            gateway_port=port("GATEWAY_PORT"),
            users_port=port("USERS_PORT"),
            db_port=port("DB_PORT"),
            jaeger_ui_port=port("JAEGER_UI_PORT"),
            zipkin_ui_port=port("ZIPKIN_UI_PORT"),
            victorialogs_port=port("VICTORIALOGS_PORT"),
            victoriametrics_port=port("VICTORIAMETRICS_PORT"),
            spanmetrics_port=port("SPANMETRICS_PORT"),
            otlp_grpc_port=port("OTLP_GRPC_PORT"),
            gateway_service=name("GATEWAY_SERVICE_NAME"),
            users_service=name("USERS_SERVICE_NAME"),
            db_service=name("DB_SERVICE_NAME"),
        )

    @property
    def services(self) -> tuple[str, str, str]:
        """The three ``service.name`` values, gateway first."""
        return (self.gateway_service, self.users_service, self.db_service)

    @property
    def gateway_url(self) -> str:
        return _url(self.gateway_port)

    @property
    def jaeger_url(self) -> str:
        return _url(self.jaeger_ui_port)

    @property
    def zipkin_url(self) -> str:
        return _url(self.zipkin_ui_port)

    @property
    def victorialogs_url(self) -> str:
        return _url(self.victorialogs_port)

    @property
    def victoriametrics_url(self) -> str:
        return _url(self.victoriametrics_port)

    @property
    def red_metrics_url(self) -> str:
        """The collector's span_metrics page, in the Prometheus text format."""
        return f"{_url(self.spanmetrics_port)}/metrics"

    @property
    def otlp_endpoint(self) -> str:
        """Where the services export (the collector's OTLP gRPC receiver)."""
        return _url(self.otlp_grpc_port)


def _url(port: int) -> str:
    return f"http://{HOST}:{port}"


@functools.cache
def topology() -> Topology:
    """The topology in deploy/.env, read once."""
    return Topology.from_dotenv(read_dotenv())
