"""The users table as the benchmark's own code declares it (the FastAPI peer, ``bench/sql.py``).

The same columns and SQLite pragmas as db's, so the peer and the SQL steps read the
same rows the same way db does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
    sqlite_autoincrement=True,
)
COLUMNS = (users.c.id, users.c.name, users.c.email, users.c.created_at)
#: One user by id, built once and bound per execution (as db builds its statements).
GET = select(*COLUMNS).where(users.c.id == bindparam("user_id"))
#: The same read for a driver alone.
GET_SQL = "SELECT id, name, email, created_at FROM users WHERE id = ?"
#: db's pragmas: WAL, a busy timeout, and a write that survives a crash of the machine.
PRAGMAS = ("journal_mode=WAL", "busy_timeout=5000", "synchronous=FULL")


def apply_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """A ``connect`` event listener: db's pragmas on each new connection."""
    cursor = dbapi_connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def seed(path: Path) -> None:
    """The table with one user (id 1), created with the standard library's sqlite3."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "name VARCHAR(100) NOT NULL, email VARCHAR(254) NOT NULL UNIQUE, "
            "created_at VARCHAR(32) NOT NULL)"
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "INSERT OR IGNORE INTO users (id, name, email, created_at) VALUES (1, ?, ?, ?)",
            ("Ada", "ada@example.com", "2026-01-01T00:00:00.000Z"),
        )
