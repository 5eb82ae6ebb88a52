"""One request becomes one complete trace in the real Jaeger and Zipkin.

Each test sends a request through the gateway, takes the trace id from the response's
``traceparent``, polls both backends until the trace is complete and asserts the exact
tree, the statuses and the attributes.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from support.backends import jaeger_spans, lowercase_shape, wait_for_trace, zipkin_spans
from support.chain import (
    DB,
    FLAKY_DB_TREE,
    GATEWAY,
    SERVER_ATTRIBUTES,
    USERS,
    expected_tree,
    span_count,
)
from support.scenarios import until_flaky_db_fails
from support.traces import Node, http_client_spans, server_spans, span_id_of, trace_id_of

USERS_URL = "http://127.0.0.1:8001"


def _ids(tree: Node) -> set[tuple[str, str | None]]:
    return {(node.span.span_id, node.span.parent_id) for node in tree.walk()}


def test_create_user_is_the_same_complete_trace_in_jaeger_and_zipkin(gateway_url: str) -> None:
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(f"{gateway_url}/api/users", json={"name": "Grace", "email": email})
    assert response.status_code == 201, response.text
    traceparent = response.headers["traceparent"]
    trace_id = trace_id_of(traceparent)
    expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))

    jaeger = wait_for_trace(jaeger_spans, trace_id, span_count(expected))
    zipkin = wait_for_trace(zipkin_spans, trace_id, span_count(expected))

    assert jaeger.shape() == expected
    assert zipkin.shape() == lowercase_shape(expected)
    assert _ids(jaeger) == _ids(zipkin)  # the same span ids and parent links in both
    assert jaeger.span.span_id == span_id_of(traceparent)
    assert {node.span.service for node in jaeger.walk()} == {GATEWAY, USERS, DB}

    request_id = response.headers["x-request-id"]
    for tree in (jaeger, zipkin):
        servers = server_spans(tree)
        assert [span.service for span in servers] == [GATEWAY, USERS, DB]
        for span in servers:
            assert set(span.attributes) >= SERVER_ATTRIBUTES, span.name
            assert span.attributes["request.id"] == request_id
            assert str(span.attributes["http.status_code"]) == "201"
            assert not span.error
        (insert,) = tree.find(lambda span: span.name.lower().startswith("insert"))
        assert insert.attributes["db.system"] == "sqlite"
        assert insert.attributes["db.statement"].startswith("INSERT INTO users")


def test_not_found_trace_has_client_errors_and_clean_server_spans(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/api/users/987654321")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    expected = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
    trace_id = trace_id_of(response.headers["traceparent"])

    for fetch in (jaeger_spans, zipkin_spans):
        tree = wait_for_trace(fetch, trace_id, span_count(expected))
        assert tree.shape() == (expected if fetch is jaeger_spans else lowercase_shape(expected))
        servers = server_spans(tree)
        assert [span.service for span in servers] == [GATEWAY, USERS, DB], fetch.__name__
        for span in servers:
            assert str(span.attributes["http.status_code"]) == "404"
            assert not span.error, (fetch.__name__, span.name)
        clients = http_client_spans(tree)
        assert [span.service for span in clients] == [GATEWAY, USERS], fetch.__name__
        for span in clients:
            assert str(span.attributes["http.status_code"]) == "404"
            assert span.error, (fetch.__name__, span.name)


def test_sampled_out_request_never_reaches_either_backend(gateway_url: str) -> None:
    # users trusts its caller's sampled flag; the gateway, the public edge, does not
    # (tests/integration/test_one_trace.py).
    unsampled = uuid.uuid4().hex
    response = httpx.get(
        f"{USERS_URL}/users",
        headers={"traceparent": f"00-{unsampled}-00f067aa0ba902b7-00"},
    )
    assert response.status_code == 200
    assert response.headers["traceparent"].startswith(f"00-{unsampled}-")
    assert response.headers["traceparent"].endswith("-00")

    # Every hop exports in order, so once a later sampled trace is complete in a
    # backend, anything the unsampled request produced would be there too.
    marker = httpx.get(f"{gateway_url}/api/users/987654321")
    marker_id = trace_id_of(marker.headers["traceparent"])
    for fetch in (jaeger_spans, zipkin_spans):
        wait_for_trace(fetch, marker_id, 7)
        assert fetch(unsampled) == [], fetch.__name__


def test_failing_downstream_is_an_error_on_every_hop_up_to_the_gateway(gateway_url: str) -> None:
    db_health = httpx.get("http://127.0.0.1:8002/health").json()
    if not db_health.get("demo_scenarios"):
        pytest.skip("the running stack was started without DEMO_SCENARIOS=1")
    with httpx.Client(timeout=10) as http:
        created = http.post(
            f"{gateway_url}/api/users",
            json={"name": "Alan", "email": f"flaky-{uuid.uuid4().hex[:12]}@example.com"},
        )
        assert created.status_code == 201, created.text
        response, _ = until_flaky_db_fails(http, f"{gateway_url}/api/users/{created.json()['id']}")
    assert response.headers["content-type"] == "application/problem+json"
    expected = FLAKY_DB_TREE
    trace_id = trace_id_of(response.headers["traceparent"])
    for fetch in (jaeger_spans, zipkin_spans):
        tree = wait_for_trace(fetch, trace_id, span_count(expected))
        assert tree.shape() == (expected if fetch is jaeger_spans else lowercase_shape(expected))
        assert all(node.span.error for node in tree.walk()), fetch.__name__
        (db_server,) = [s for s in server_spans(tree) if s.service == DB]
        assert str(db_server.attributes["http.status_code"]) == "503"
