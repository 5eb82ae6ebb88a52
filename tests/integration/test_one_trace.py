"""One request through the gateway is one trace across the three services.

The services run as real processes and export OTLP to a receiver inside the test,
exactly as they would to the collector.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from support.chain import DB, GATEWAY, SERVER_ATTRIBUTES, USERS, expected_tree, span_count
from support.databases import make_database
from support.otlp import OtlpReceiver
from support.services import running_chain
from support.traces import (
    Node,
    build_tree,
    http_client_spans,
    poll_until,
    server_spans,
    span_id_of,
    trace_id_of,
)


def wait_for_trace(
    receiver: OtlpReceiver, trace_id: str, spans: int, remote_parent: str | None = None
) -> Node:
    """Poll the receiver until ``spans`` spans of ``trace_id`` arrived; return the tree."""
    received = poll_until(
        lambda: receiver.spans(trace_id),
        lambda got: len(got) >= spans,
        timeout=15,
        what=f"{spans} spans of trace {trace_id}",
    )
    return build_tree(received, remote_parent=remote_parent)


def test_create_user_is_one_trace_across_three_services(
    gateway_url: str, receiver: OtlpReceiver, backend: str
) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(f"{gateway_url}/api/users", json={"name": "Ada", "email": email})
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email

    expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
    trace_id = trace_id_of(response.headers["traceparent"])
    tree = wait_for_trace(receiver, trace_id, span_count(expected))

    assert tree.shape() == expected
    assert tree.span.span_id == span_id_of(response.headers["traceparent"])
    assert {node.span.service for node in tree.walk()} == {GATEWAY, USERS, DB}

    request_id = response.headers["x-request-id"]
    servers = server_spans(tree)
    assert [span.service for span in servers] == [GATEWAY, USERS, DB]
    for span in servers:
        assert set(span.attributes) >= SERVER_ATTRIBUTES, span.name
        assert span.attributes["request.id"] == request_id
        assert span.attributes["http.status_code"] == 201
        assert not span.error
    clients = http_client_spans(tree)
    assert [span.service for span in clients] == [GATEWAY, USERS]
    for span in clients:
        assert span.attributes["http.method"] == "POST", span.name
        # What the client knows of the time before the peer's SERVER span: the request
        # left, then the answer's headers came (a new connection adds "connected").
        events = [e for e in span.events if e != "connected"]
        assert events == ["request sent", "response headers received"], span.name
    insert = tree.find(lambda span: span.name.startswith("INSERT"))[0]
    assert insert.attributes["db.system"] == backend  # "sqlite" or "postgresql"
    assert insert.attributes["db.statement"].startswith("INSERT INTO users")
    assert email not in insert.attributes["db.statement"]  # values stay bound parameters


def test_not_found_is_one_trace_with_client_errors(
    gateway_url: str, receiver: OtlpReceiver
) -> None:
    response = httpx.get(f"{gateway_url}/api/users/987654321")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404

    expected = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
    tree = wait_for_trace(receiver, trace_id_of(response.headers["traceparent"]), 7)

    assert tree.shape() == expected
    servers = server_spans(tree)
    assert [span.service for span in servers] == [GATEWAY, USERS, DB]
    for span in servers:
        # A 404 is the client's mistake: server spans stay unset, not ERROR.
        assert span.attributes["http.status_code"] == 404
        assert not span.error, span.name
    clients = http_client_spans(tree)
    assert [span.service for span in clients] == [GATEWAY, USERS]
    for span in clients:
        assert span.attributes["http.status_code"] == 404
        assert span.error, span.name


@pytest.mark.parametrize("flags", ["01", "00"])
def test_the_public_edge_starts_its_own_trace_linked_to_the_callers(
    gateway_url: str, receiver: OtlpReceiver, flags: str
) -> None:
    caller_trace, caller_span = uuid.uuid4().hex, "00f067aa0ba902b7"
    answer = httpx.get(
        f"{gateway_url}/api/users",
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-{flags}", "x-request-id": "c-1"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "c-1"
    trace_id = trace_id_of(answer.headers["traceparent"])
    assert trace_id != caller_trace
    assert answer.headers["traceparent"].endswith("-03")  # sampled: flags 00 switch nothing off

    expected = expected_tree("GET", "/api/users", "/users", sql=("SELECT", "SELECT"))
    tree = wait_for_trace(receiver, trace_id, span_count(expected))
    assert tree.shape() == expected  # a span in every service
    assert tree.span.parent_id is None
    assert tree.span.links == ((caller_trace, caller_span),)
    assert receiver.spans(caller_trace) == []


def test_a_trusting_gateway_continues_the_callers_trace_and_follows_unsampled(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """``TRUST_INCOMING_TRACE=1``: the gateway behaves as users and db always do."""
    with running_chain(receiver, tmp_path, {"TRUST_INCOMING_TRACE": "1"}) as url:
        caller_trace = uuid.uuid4().hex
        sampled = httpx.get(
            f"{url}/api/users",
            headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
        )
        assert sampled.status_code == 200
        assert trace_id_of(sampled.headers["traceparent"]) == caller_trace

        unsampled_trace = uuid.uuid4().hex
        unsampled = httpx.get(
            f"{url}/api/users",
            headers={"traceparent": f"00-{unsampled_trace}-00f067aa0ba902b7-00"},
        )
        assert unsampled.status_code == 200
        assert unsampled.headers["traceparent"].startswith(f"00-{unsampled_trace}-")
        assert unsampled.headers["traceparent"].endswith("-00")

        # Each service exports in order, so once a later sampled trace is complete,
        # anything the unsampled request had produced would have arrived too.
        marker = httpx.get(f"{url}/api/users/1")
        wait_for_trace(receiver, trace_id_of(marker.headers["traceparent"]), 7)
    tree = wait_for_trace(receiver, caller_trace, 8, remote_parent="00f067aa0ba902b7")
    assert tree.shape() == expected_tree("GET", "/api/users", "/users", sql=("SELECT", "SELECT"))
    assert tree.span.links == ()
    assert receiver.spans(unsampled_trace) == []


def test_sql_spans_on_postgresql_under_the_database_semconv_opt_in(
    request: pytest.FixtureRequest, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """``OTEL_SEMCONV_STABILITY_OPT_IN=database/dup``: the stable names beside the old ones."""
    database = make_database(request, "postgresql", tmp_path)
    env = {"OTEL_SEMCONV_STABILITY_OPT_IN": "database/dup"}
    with running_chain(receiver, tmp_path, env, database) as url:
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        response = httpx.post(f"{url}/api/users", json={"name": "Ada", "email": email})
        assert response.status_code == 201, response.text
        expected = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
        tree = wait_for_trace(
            receiver, trace_id_of(response.headers["traceparent"]), span_count(expected)
        )
    assert tree.shape() == expected
    (insert,) = tree.find(lambda span: span.name.startswith("INSERT"))
    old_and_stable = {
        "db.system": "db.system.name",
        "db.statement": "db.query.text",
        "db.name": "db.namespace",
    }
    for old, stable in old_and_stable.items():
        assert insert.attributes[stable] == insert.attributes[old], stable
    assert insert.attributes["db.system.name"] == "postgresql"
    assert insert.attributes["db.namespace"] == database.name
    assert insert.attributes["db.query.text"].startswith("INSERT INTO users")
    assert email not in insert.attributes["db.query.text"]  # values stay bound parameters


def test_no_query_value_reaches_any_exported_span(gateway_url: str, receiver: OtlpReceiver) -> None:
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    query = {"limit": "2", "token": canary, "email": f"{canary}@example.com"}
    answers = [
        httpx.get(f"{gateway_url}/api/users", params=query),
        httpx.get(f"{gateway_url}/api/users/1", params={"session": canary}),
        httpx.get(f"{gateway_url}/api/users", params={"limit": canary}),  # a 400
    ]
    trees = []
    for answer, spans in zip(answers, (8, 7, 1), strict=True):
        assert answer.status_code < 500, answer.text
        trees.append(wait_for_trace(receiver, trace_id_of(answer.headers["traceparent"]), spans))
    for span in receiver.spans():
        assert canary not in repr((span.name, span.attributes, span.events)), span
    # The names stay, as the URL conventions show a redacted query.
    assert (
        trees[0]
        .span.attributes["http.url"]
        .endswith("/api/users?email=REDACTED&limit=REDACTED&token=REDACTED")
    )
