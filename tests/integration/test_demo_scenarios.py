"""The demo's baggage and fault scenarios, through the three real services.

A second group of services runs here with ``DEMO_SCENARIOS=1`` (and ``flaky-db``
failing every time, so the test is deterministic); the suite's own group, started
without it, shows that a scenario asked for by baggage is ignored by default.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from support.chain import DB, FLAKY_DB_TREE, GATEWAY, USERS, expected_tree, span_count
from support.otlp import OtlpReceiver
from support.services import running_chain
from support.traces import Node, build_tree, poll_until, server_spans, trace_id_of

LATENCY_MS = 300


@pytest.fixture(scope="module")
def demo_url(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """db, users and gateway with the scenarios switched on; the gateway's base URL."""
    env = {"DEMO_SCENARIOS": "1", "DEMO_DB_LATENCY_MS": str(LATENCY_MS), "DEMO_FAILURE_RATE": "1"}
    with running_chain(receiver, tmp_path_factory.mktemp("demo-services"), env) as url:
        yield url


def trace_of(
    receiver: OtlpReceiver, response: httpx.Response, spans: int, timeout: float = 60
) -> Node:
    """Wait until the response's trace has ``spans`` spans; return its tree."""
    trace_id = trace_id_of(response.headers["traceparent"])
    received = poll_until(
        lambda: receiver.spans(trace_id),
        lambda got: len(got) >= spans,
        timeout=timeout,
        what=f"{spans} spans of trace {trace_id}",
    )
    return build_tree(received)


def db_server(tree: Node) -> Node:
    (node,) = [n for n in tree.walk() if n.span.service == DB and n.span.kind == "SERVER"]
    return node


def create_user(base_url: str, **headers: str) -> httpx.Response:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(
        f"{base_url}/api/users", json={"name": "Ada", "email": email}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response


def test_session_header_becomes_baggage_recorded_by_every_service(
    demo_url: str, receiver: OtlpReceiver
) -> None:
    session = f"it-{uuid.uuid4().hex[:8]}"
    response = create_user(demo_url, **{"X-Demo-Session": session})

    expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
    tree = trace_of(receiver, response, span_count(expected))

    assert tree.shape() == expected
    assert {span.service for span in server_spans(tree)} == {GATEWAY, USERS, DB}
    for span in server_spans(tree):
        assert span.attributes["baggage.demo.session"] == session, span.service


def test_slow_db_shows_the_latency_in_a_span_of_its_own(
    demo_url: str, receiver: OtlpReceiver
) -> None:
    user_id = create_user(demo_url).json()["id"]

    response = httpx.get(
        f"{demo_url}/api/users/{user_id}", headers={"baggage": "demo.scenario=slow-db"}
    )

    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= LATENCY_MS / 1000
    plain = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
    tree = trace_of(receiver, response, span_count(plain) + 1)
    db = db_server(tree)
    assert db.span.attributes["baggage.demo.scenario"] == "slow-db"
    latency = [child.span for child in db.children if child.span.kind == "INTERNAL"]
    assert [(s.name, s.error) for s in latency] == [("demo: injected latency", False)]
    assert latency[0].attributes["demo.latency_ms"] == LATENCY_MS
    # Apart from that span, the trace is the ordinary one.
    assert _without_internal(tree) == plain


def test_n_plus_one_shows_one_select_per_user(demo_url: str, receiver: OtlpReceiver) -> None:
    for _ in range(3):
        create_user(demo_url)

    response = httpx.get(
        f"{demo_url}/api/users?limit=3", headers={"baggage": "demo.scenario=n-plus-one"}
    )

    assert response.status_code == 200
    assert len(response.json()["items"]) == 3
    # The page's ids, one SELECT per user, and the total count.
    expected = expected_tree("GET", "/api/users", "/users", sql=("SELECT",) * (1 + 3 + 1))
    tree = trace_of(receiver, response, span_count(expected))
    assert tree.shape() == expected
    statements = [
        child.span.attributes["db.statement"]
        for child in db_server(tree).children
        if child.span.attributes.get("db.statement", "").startswith("SELECT")
    ]
    assert sum("WHERE users.id = ?" in statement for statement in statements) == 3


@pytest.mark.faults
def test_flaky_db_fails_the_db_hop_and_the_gateway_answers_503(
    demo_url: str, receiver: OtlpReceiver
) -> None:
    response = httpx.get(f"{demo_url}/api/users/1", headers={"baggage": "demo.scenario=flaky-db"})

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "injected failure" in response.json()["detail"]
    tree = trace_of(receiver, response, 6)
    assert tree.shape() == FLAKY_DB_TREE
    # Every span on the path is ERROR, the failing hop (users -> db) included.
    assert all(node.span.error for node in tree.walk())
    assert db_server(tree).span.attributes["http.status_code"] == 503


@pytest.mark.skipif(
    os.environ.get("DEMO_SCENARIOS", "0") not in ("", "0", "false", "no", "off"),
    reason="the suite's services inherit DEMO_SCENARIOS from this shell",
)
def test_scenarios_are_ignored_when_not_switched_on(
    gateway_url: str, receiver: OtlpReceiver
) -> None:
    response = httpx.get(
        f"{gateway_url}/api/users/987654321", headers={"baggage": "demo.scenario=flaky-db"}
    )

    assert response.status_code == 404
    expected = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
    tree = trace_of(receiver, response, span_count(expected))
    assert tree.shape() == expected
    # Recorded, so a search finds the request, but nothing was injected.
    assert db_server(tree).span.attributes["baggage.demo.scenario"] == "flaky-db"


def _without_internal(tree: Node) -> tuple[object, ...]:
    def prune(node: Node) -> Node:
        kept = [prune(child) for child in node.children if child.span.kind != "INTERNAL"]
        return Node(node.span, kept)

    return prune(tree).shape()
