"""A service says it is ready only once its first request will find everything open.

Cello answers nothing until start-up hooks return, and each service warms up there:
db opens every pooled connection and runs its read statements once, users and the
gateway open a connection to the next service. So the first trace after start-up
shows no connection set-up that no span covers. What is checked here is the state,
before any request: timings are for ``make bench``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faulttools import Chain, process_connections_to

from support.otlp import OtlpReceiver
from support.traces import poll_until, trace_id_of


@pytest.fixture
def fresh_chain(tmp_path: Path) -> Iterator[tuple[Chain, OtlpReceiver]]:
    with OtlpReceiver() as otlp:
        chain = Chain(tmp_path, otlp.endpoint, {"DATABASE_POOL_SIZE": "5"})
        chain.start()
        try:
            yield chain, otlp
        finally:
            chain.stop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_every_service_is_warm_before_its_first_request(fresh_chain) -> None:
    chain, otlp = fresh_chain

    database = chain.health("db")["database"]
    assert database == {"pool_size": 5, "open": 5, "in_use": 0}
    assert process_connections_to(chain.pid("users"), port_of(chain.url("db"))) >= 1
    assert process_connections_to(chain.pid("gateway"), port_of(chain.url("users"))) >= 1

    # The warm-up made no traces: the first request's trace is the only one.
    answer = httpx.get(f"{chain.url()}/api/users/1", timeout=10)
    assert answer.status_code == 404
    trace_id = trace_id_of(answer.headers["traceparent"])
    poll_until(lambda: otlp.spans(trace_id), lambda got: len(got) >= 7, timeout=30)
    assert otlp.trace_ids() == {trace_id}
