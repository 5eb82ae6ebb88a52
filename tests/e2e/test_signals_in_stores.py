"""Metrics and logs beside the traces, read back from VictoriaMetrics and VictoriaLogs.

- One request through the gateway: VictoriaLogs answers log lines of all three services
  for its trace id, each line's span id is a span of that trace in Jaeger, and no line
  holds the e-mail address the request sent.
- N requests with one trace in ten kept (``OTEL_TRACES_SAMPLER_ARG=0.1``): each service's
  ``http.server.request.duration`` count rises by exactly N, while the traces kept stay
  within the binomial bounds of a tenth, and only those reach Jaeger.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import httpx

from support.backends import jaeger_spans, wait_for_trace
from support.chain import DB, GATEWAY, USERS, expected_tree, span_count
from support.traces import binomial_bounds, poll_until, trace_id_of

VICTORIAMETRICS = "http://127.0.0.1:8428"
VICTORIALOGS = "http://127.0.0.1:9428"
SERVICES = (GATEWAY, USERS, DB)
CREATE_TREE = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
NOT_FOUND_TREE = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
REQUESTS, RATIO, CONFIDENCE = 200, 0.1, 0.999


def log_lines(trace_id: str) -> list[dict[str, Any]]:
    """VictoriaLogs' records of one trace (LogsQL answers one JSON object a line)."""
    response = httpx.get(
        f"{VICTORIALOGS}/select/logsql/query", params={"query": f"trace_id:{trace_id}"}
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def counts(query: str) -> Counter[str]:
    """A PromQL ``sum by (service_name)`` from VictoriaMetrics, as of now."""
    response = httpx.get(
        f"{VICTORIAMETRICS}/api/v1/query", params={"query": f"sum by (service_name) ({query})"}
    )
    response.raise_for_status()
    return Counter(
        {s["metric"].get("service_name", ""): int(float(s["value"][1]))
         for s in response.json()["data"]["result"]}
    )  # fmt: skip


def test_one_request_logs_in_all_three_services_on_spans_of_its_trace(gateway_url: str) -> None:
    email = f"logs-{uuid.uuid4().hex[:12]}@example.com"
    created = httpx.post(f"{gateway_url}/api/users", json={"name": "Grace", "email": email})
    assert created.status_code == 201, created.text
    trace_id = trace_id_of(created.headers["traceparent"])

    lines = poll_until(
        lambda: log_lines(trace_id),
        lambda found: {line.get("service.name") for line in found} >= set(SERVICES),
        timeout=30,
        what=f"log lines of {', '.join(SERVICES)} for trace {trace_id} in VictoriaLogs",
    )
    tree = wait_for_trace(jaeger_spans, trace_id, span_count(CREATE_TREE))
    spans = {node.span.span_id: node.span for node in tree.walk()}
    for line in lines:
        assert line["trace_id"] == trace_id
        span = spans.get(line["span_id"])
        assert span is not None, f"{line['service.name']}: span {line['span_id']} not in Jaeger"
        assert span.service == line["service.name"]
        assert line["severity_text"]
        assert line.get("request.id") == created.headers["x-request-id"]
    access = {(line["service.name"], line["_msg"]) for line in lines}
    assert access >= {
        (GATEWAY, "POST /api/users 201"),
        (USERS, "POST /users 201"),
        (DB, "POST /users 201"),
    }
    assert email not in json.dumps(lines)


def test_every_request_is_counted_while_a_tenth_of_the_traces_are_kept(
    tenth_sampled_gateway: str,
) -> None:
    duration = "http_server_request_duration_seconds_count"
    before = counts(duration)
    sampled, unsampled = [], []
    with httpx.Client(base_url=tenth_sampled_gateway) as http:
        for _ in range(REQUESTS):
            response = http.get("/api/users/987654321")  # a 404 on every hop
            assert response.status_code == 404, response.text
            traceparent = response.headers["traceparent"]
            # The flags' lowest bit is "sampled" (the next one says the id is random).
            kept = int(traceparent.rsplit("-", 1)[1], 16) & 1
            (sampled if kept else unsampled).append(trace_id_of(traceparent))

    def added() -> Counter[str]:
        now = counts(duration)
        return Counter({service: now[service] - before[service] for service in SERVICES})

    got = poll_until(
        added,
        lambda delta: all(delta[service] >= REQUESTS for service in SERVICES),
        timeout=60,
        interval=1.0,
        what=f"{REQUESTS} more {duration} per service in VictoriaMetrics",
    )
    assert got == Counter({service: REQUESTS for service in SERVICES})

    low, high = binomial_bounds(REQUESTS, RATIO, CONFIDENCE)
    assert low <= len(sampled) <= high, f"{len(sampled)} of {REQUESTS} sampled"
    for trace_id in sampled:
        wait_for_trace(jaeger_spans, trace_id, span_count(NOT_FOUND_TREE))
    # Kept ones have arrived, so the pipeline has flushed: the rest never will.
    assert all(jaeger_spans(trace_id) == [] for trace_id in unsampled[:20])

    # The httpx instrumentation's client histogram counts each call as well.
    clients = counts('{__name__=~"http_client_.*duration.*_count"}')
    assert clients[GATEWAY] >= REQUESTS
    assert clients[USERS] >= REQUESTS
