"""The three services on loopback for a test, exporting to an in-test OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tools.ports import free_ports
from tools.run import ServiceGroup, chain

from .databases import Database, sqlite_database
from .otlp import OtlpReceiver
from .traces import poll_until, trace_id_of


@contextmanager
def running_chain(
    receiver: OtlpReceiver,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    database: Database | None = None,
) -> Iterator[str]:
    """db, users and gateway on free ports, exporting to ``receiver``; yields the gateway URL.

    ``env`` adds to (or overrides) every service's environment; db keeps its users in
    ``database`` (default: a SQLite file in ``workdir``).
    """
    gateway, users, db = free_ports(3)
    group = ServiceGroup(
        chain(gateway_port=gateway, users_port=users, db_port=db),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "DATABASE_URL": (database or sqlite_database(workdir)).url,
            **(env or {}),
        },
        log_dir=workdir / "logs",
    )
    group.start(timeout=60)
    try:
        url = f"http://127.0.0.1:{gateway}"
        # The first spans of fresh processes take longest (each exporter opens its
        # channel first, slowly on a busy machine): wait for a whole first trace
        # here, not inside some test's deadline.
        warm_up = httpx.get(f"{url}/api/users/1")
        trace_id = trace_id_of(warm_up.headers["traceparent"])
        poll_until(lambda: receiver.spans(trace_id), lambda got: len(got) >= 7, timeout=120)
        yield url
    finally:
        group.stop()
