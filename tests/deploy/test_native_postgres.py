"""`make up DB=postgres` natively: deploy/stack.sh starts a throwaway PostgreSQL cluster
(tools/pgcluster.py) before db, points db at it, and `down` removes it again.

One request through the stack must reach Jaeger with its SQL spans on PostgreSQL,
the trace shaped as on SQLite. Skipped when anything already listens on the stack's
ports: a running stack is somebody's, and this test would have to replace it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from deploytools import DEPLOY, REPO

from support.backends import jaeger_spans, wait_for_trace
from support.chain import expected_tree, span_count
from support.traces import sql_spans, trace_id_of

pytestmark = pytest.mark.e2e

PG_PORT = 15432


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stack(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STACK="native", DB="postgres", UP_TIMEOUT="120")
    return subprocess.run(
        [str(DEPLOY / "stack.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_db_postgres_runs_db_on_a_throwaway_cluster_that_down_removes(
    tool: Callable[[str], Path], postgres_bindir: Path
) -> None:
    busy = [port for port in (8000, 8002, 4317, 16686, 9411, PG_PORT) if port_in_use(port)]
    if busy:
        pytest.skip(f"a stack is running (ports {busy}): not replacing it")
    for name in ("otelcol", "jaeger", "zipkin"):
        tool(name)  # build (once per machine) outside the stack's own deadline
    up = _stack("up", timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        log = (REPO / ".run" / "postgres.log").read_text()
        cluster = Path(re.findall(r"^PostgreSQL \S+ in (\S+)$", log, re.MULTILINE)[-1])
        assert cluster.is_dir()
        assert f"DATABASE_URL=postgresql+asyncpg://cello@127.0.0.1:{PG_PORT}/users" in log

        email = f"{uuid.uuid4().hex[:12]}@example.com"
        response = httpx.post(
            "http://127.0.0.1:8000/api/users", json={"name": "Ada", "email": email}, timeout=10
        )
        assert response.status_code == 201, response.text
        expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
        trace_id = trace_id_of(response.headers["traceparent"])
        tree = wait_for_trace(jaeger_spans, trace_id, span_count(expected))
        assert tree.shape() == expected
        systems = [span.attributes["db.system"] for span in sql_spans(tree)]
        assert systems == ["postgresql", "postgresql"]  # connect, INSERT
    finally:
        down = _stack("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not port_in_use(PG_PORT)
    assert not cluster.exists(), f"{cluster} left behind"
