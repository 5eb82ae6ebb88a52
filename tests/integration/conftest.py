"""The three services as real processes on loopback, exporting to an in-test receiver.

Tests that use ``gateway_url`` run once with db on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.databases import make_database
from support.otlp import OtlpReceiver
from support.services import running_chain


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="session")
def gateway_url(
    backend: str,
    request: pytest.FixtureRequest,
    receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The suite's own services, with default settings, db on ``backend``; the gateway's URL."""
    workdir = tmp_path_factory.mktemp(f"services-{backend}")
    database = make_database(request, backend, workdir)
    with running_chain(receiver, workdir, database=database) as url:
        yield url
