"""db's database settings: which URLs it takes, the pool and timeout bounds, and a
clear start-up error when the database cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pgcluster
import pytest

from cello_settings import ConfigError
from db.database import prepare_database
from db.settings import Settings


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./data/users.db",
        "postgresql+asyncpg://cello:secret@db.example:5432/users",
    ],
)
def test_sqlite_and_postgresql_urls_are_taken(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert Settings.from_env().database_url == url


@pytest.mark.parametrize(
    "url",
    ["postgresql://cello:s3cret@db.example/users", "mysql+aiomysql://db.example/users", "users.db"],
)
def test_other_urls_are_refused_naming_the_drivers(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(
        ConfigError, match=r"sqlite\+aiosqlite://, postgresql\+asyncpg://"
    ) as raised:
        Settings.from_env()
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+asyncpg://cello:p@ss@w0rd-tail@db.example:5432/users", "%40"),
        ("postgresql+asyncpg://cello:p@ss@w0rd-tail@db.example/users", "%40"),
        ("postgresql+asyncpg://cello:w0rd-tail@db.example:five/users", "port must be a number"),
        ("postgresql+asyncpg://cello:w0rd-tail@db.example:-1/users", "port must be a number"),
    ],
    ids=["@ in password", "@ in password, no port", "non-numeric port", "negative port"],
)
def test_malformed_url_is_refused_showing_only_the_scheme(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match=says) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert "w0rd-tail" not in message
    assert "db.example" not in message
    assert message.startswith("DATABASE_URL (postgresql+asyncpg://...)")


def test_pool_and_timeout_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DATABASE_POOL_SIZE", "DATABASE_TIMEOUT", "DB_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.pool_size, settings.database_timeout) == (16, 1.0)
    # Below users' default wait for db (DB_TIMEOUT, 2 s): a dead database is db's answer.
    assert settings.database_timeout < 2.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("DATABASE_POOL_SIZE", "0"), ("DATABASE_POOL_SIZE", "ten"), ("DATABASE_TIMEOUT", "0")],
)
def test_bad_pool_and_timeout_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings.from_env()


def test_unreachable_database_stops_the_start_without_showing_the_password() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    url = "postgresql+asyncpg://cello:s3cret@127.0.0.1:1/users"
    with pytest.raises(ConfigError, match="cannot create the schema") as raised:
        prepare_database(url)
    assert "s3cret" not in str(raised.value)
    assert "ConnectionRefusedError" in str(raised.value)


def test_schema_is_created_in_a_new_sqlite_file(tmp_path: Path) -> None:
    file = tmp_path / "nested" / "users.db"
    prepare_database(f"sqlite+aiosqlite:///{file}")
    assert file.exists()


def test_missing_postgresql_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcluster, "find_bindir", lambda: None)
    monkeypatch.setattr(pgcluster.os, "geteuid", lambda: 1000)  # not root: no apt-get
    with pytest.raises(pgcluster.PostgresMissingError, match="apt-get install -y postgresql"):
        pgcluster.ensure_postgres()
