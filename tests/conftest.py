"""Suite-wide set-up: each test directory is one level of the test pyramid.

A test gets the marker of the directory it lives in (``tests/unit`` -> ``unit``),
so ``pytest -m unit`` selects exactly that level without per-file boilerplate.

The ``backend`` fixture runs a test once per database db supports (SQLite and
PostgreSQL, see ``support/databases.py``); ``postgres`` is the session's throwaway
PostgreSQL cluster, started on first use and removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import Cluster, PostgresMissingError, ensure_postgres

from support.databases import BACKENDS

_LEVELS = {"unit", "integration", "e2e", "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        level = Path(item.path).relative_to(tests_root).parts[0]
        if level in _LEVELS:
            item.add_marker(getattr(pytest.mark, level))


@pytest.fixture(scope="session")
def postgres_bindir() -> Path:
    """The PostgreSQL server binaries; installed with apt when missing and run as root."""
    try:
        return ensure_postgres()
    except PostgresMissingError as exc:
        pytest.skip(f"PostgreSQL tests need the server binaries: {exc}")


@pytest.fixture(scope="session")
def postgres(postgres_bindir: Path) -> Iterator[Cluster]:
    """The session's throwaway PostgreSQL cluster; each test database lives in it."""
    with Cluster(bindir=postgres_bindir) as cluster:
        yield cluster


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database db runs on: each test that asks for it runs once per backend."""
    name: str = request.param
    return name
