"""Every answer of a traced route is made inside its SERVER span, through Cello's dispatch.

A small app (support/edge_app.py) runs as a real Cello server on a free port, exporting to
an OTLP receiver in the test: a refusing route guard, Cello's ``Authenticated`` guard and
a ``body=`` model, each answered with its status as problem+json (or the handler's own
answer for a valid body), with ``traceparent`` and ``X-Request-ID``, and exported as the
SERVER span that ``traceparent`` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.otlp import OtlpReceiver
from support.traces import Span, poll_until, span_id_of, trace_id_of
from tools.ports import free_ports
from tools.run import Service, ServiceGroup

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def edge(otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    group = ServiceGroup(
        [Service("edge", "support.edge_app", port, {"PYTHONPATH": path})],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"},
        log_dir=tmp_path_factory.mktemp("edge-logs"),
    )
    group.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop()


def server_span(otlp: OtlpReceiver, response: httpx.Response) -> Span:
    """The exported SERVER span that the response's ``traceparent`` names."""
    traceparent = response.headers["traceparent"]
    spans = poll_until(
        lambda: otlp.spans(trace_id_of(traceparent)),
        lambda got: len(got) >= 1,
        timeout=15,
        what=f"the span of {traceparent}",
    )
    (span,) = spans
    assert (span.kind, span.span_id) == ("SERVER", span_id_of(traceparent))
    assert span.attributes["request.id"] == response.headers["x-request-id"]
    return span


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/guarded", 403, id="async-guard-refuses"),
        pytest.param("/guarded-sync", 403, id="sync-guard-refuses"),
        pytest.param("/private", 401, id="unauthenticated"),
    ],
)
def test_a_guard_refusal_is_its_status_as_a_problem_in_the_span(
    edge: str, otlp: OtlpReceiver, path: str, status: int
) -> None:
    response = httpx.get(f"{edge}{path}", headers={"X-Request-ID": f"guard-{status}"})

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status
    assert "reached" not in response.json()
    assert response.headers["x-request-id"] == f"guard-{status}"
    span = server_span(otlp, response)
    assert span.name == f"GET {path}"
    assert span.attributes["http.status_code"] == status
    assert not span.error  # a 4xx is the client's


def test_a_valid_body_reaches_the_handler_as_the_model(edge: str, otlp: OtlpReceiver) -> None:
    response = httpx.post(f"{edge}/items", json={"name": "cello", "quantity": 2})

    assert response.status_code == 201, response.text
    assert response.json() == {"name": "cello", "quantity": 2}
    span = server_span(otlp, response)
    assert (span.name, span.attributes["http.status_code"]) == ("POST /items", 201)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"name": "cello"}', id="missing-member"),
        pytest.param(b'{"name": "cello", "quantity": 0}', id="invalid-value"),
        pytest.param(b"{not json", id="not-json"),
    ],
)
def test_a_refused_body_is_a_400_problem_in_the_span(
    edge: str, otlp: OtlpReceiver, content: bytes
) -> None:
    response = httpx.post(
        f"{edge}/items", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["status"], problem["detail"]) == (400, "the body is not valid")
    assert problem["errors"]
    assert all(set(error) == {"field", "message"} for error in problem["errors"])
    span = server_span(otlp, response)
    assert (span.name, span.attributes["http.status_code"]) == ("POST /items", 400)
