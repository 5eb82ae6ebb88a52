"""The three services as real processes on loopback, exporting to an in-test receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.run import ServiceGroup, chain
from support.otlp import OtlpReceiver
from support.ports import free_ports


@pytest.fixture(scope="session")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="session")
def gateway_url(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start db, users and gateway on free ports; yield the gateway's base URL."""
    workdir: Path = tmp_path_factory.mktemp("services")
    gateway, users, db = free_ports(3)
    group = ServiceGroup(
        chain(gateway_port=gateway, users_port=users, db_port=db),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'users.db'}",
        },
        log_dir=workdir / "logs",
    )
    group.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{gateway}"
    finally:
        group.stop()
