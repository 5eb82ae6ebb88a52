"""db settings, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from cello_settings import ConfigError, env_float, env_int, env_str, host, port

from .scenarios import DemoSettings

SERVICE_NAME = "db-proxy"

RECORDED_BAGGAGE = ("demo.session", "demo.scenario")
"""W3C baggage entries recorded on this service's SERVER spans as ``baggage.<key>``:
the demo session a request belongs to, and the fault scenario it asks db for."""

#: The databases db runs on, by the start of their SQLAlchemy URL.
DRIVERS = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


@dataclass(frozen=True, slots=True)
class Settings:
    """``HOST``/``PORT`` to listen on and the database to serve.

    ``DATABASE_URL`` defaults to a SQLite file under ``./data/``
    (``sqlite+aiosqlite:////var/lib/db/users.db`` names another one); a
    ``postgresql+asyncpg://user:password@host:5432/users`` URL runs the same code on
    PostgreSQL. ``DATABASE_POOL_SIZE`` (default 16) caps the connections db holds;
    ``DATABASE_TIMEOUT`` (seconds, default 1) bounds each operation's wait for the
    database, all of it (a free pooled connection, a new one, every statement, the
    commit), or the caller's deadline if that comes first. It
    stays below users' ``DB_TIMEOUT`` (2 s), so a dead database is db's own answer.
    ``demo`` holds the fault scenarios' switch, off unless ``DEMO_SCENARIOS=1``.
    """

    host: str
    port: int
    database_url: str
    pool_size: int
    database_timeout: float
    demo: DemoSettings

    @classmethod
    def from_env(cls) -> Settings:
        url = env_str("DATABASE_URL", "sqlite+aiosqlite:///./data/users.db")
        _parse_database_url(url)
        return cls(
            host=host(),
            port=port(8002),
            database_url=url,
            pool_size=env_int("DATABASE_POOL_SIZE", 16, minimum=1, maximum=100),
            database_timeout=env_float("DATABASE_TIMEOUT", 1.0, minimum=0.1, maximum=60),
            demo=DemoSettings.from_env(),
        )


def _parse_database_url(url: str) -> URL:
    """``url`` parsed, or a :class:`ConfigError` that shows no more of it than the scheme.

    The rest of a URL may hold a password, also when it is malformed: an ``@`` left
    unencoded in a password makes the host start with the password's tail.
    """
    scheme = url.split("://", 1)[0] if "://" in url else "a URL without a scheme"
    if not url.startswith(DRIVERS):
        raise ConfigError(
            f"DATABASE_URL must start with one of: {', '.join(DRIVERS)} (got {scheme})"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        parsed = None
    if parsed is None or (parsed.port is not None and not 0 < parsed.port < 65536):
        raise ConfigError(
            f"DATABASE_URL ({scheme}://...) is not a valid URL: "
            "its port must be a number from 1 to 65535"
        )
    if "@" in (parsed.host or ""):
        raise ConfigError(
            f"DATABASE_URL ({scheme}://...) has an '@' in its user name or password: "
            "percent-encode it as %40"
        )
    return parsed
