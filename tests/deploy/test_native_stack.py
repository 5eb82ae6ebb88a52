"""The native backends end to end: `deploy/stack.sh up --infra-only` starts Zipkin,
Jaeger, VictoriaMetrics, VictoriaLogs and the collector on loopback. What is sent over
OTLP/gRPC to the collector must come out of each store's query API: a span from Jaeger's
and Zipkin's, a histogram from VictoriaMetrics' PromQL, a log record (with its trace id)
from VictoriaLogs' LogsQL, and the RED metrics from Jaeger's Monitor API, which reads
VictoriaMetrics. Zipkin and Jaeger serve the link from a trace to its logs. `down` must
leave no process and no listening port behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from deploytools import DEPLOY, dotenv
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

pytestmark = pytest.mark.e2e

STACK = DEPLOY / "stack.sh"
OTLP = "http://127.0.0.1:4317"
VM = f"http://127.0.0.1:{dotenv()['VICTORIAMETRICS_PORT']}"
VL = f"http://127.0.0.1:{dotenv()['VICTORIALOGS_PORT']}"
JAEGER = "http://127.0.0.1:16686"
ZIPKIN = "http://127.0.0.1:9411"
PORTS = (4317, 4318, 8888, 8889, 13133, 9411, 14317, 14318, 14132, 14133, 14888, 16685, 16686)
PORTS += (int(dotenv()["VICTORIAMETRICS_PORT"]), int(dotenv()["VICTORIALOGS_PORT"]))


def _stack(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STACK="native", UP_TIMEOUT="120")
    return subprocess.run(
        [str(STACK), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _listening(port: int) -> bool:
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return bool(out.strip())


def _already_up() -> bool:
    """The stores and the collector answer already (e.g. after `make up`)."""
    urls = (f"{JAEGER}/", f"{ZIPKIN}/health", f"{VM}/health", f"{VL}/health")
    return _listening(4317) and all(_get_json(url, raw=True) is not None for url in urls)


@pytest.fixture(scope="module")
def infra(tool: Callable[[str], Path]) -> Iterator[bool]:
    """Yields whether this module started the backends (and so must stop them)."""
    if _already_up():
        yield False  # someone's running stack: use it, leave it running
        return
    for name in ("otelcol", "jaeger", "zipkin", "victoriametrics", "victorialogs"):
        tool(name)  # build (once per machine) outside the stack's own deadline
    up = _stack("up", "--infra-only", timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield True
    finally:
        down = _stack("down", timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


def _send_span(service: str) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=OTLP, insecure=True)))
    with provider.get_tracer("tests.deploy").start_as_current_span("deploy-smoke") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def _get_json(url: str, *, raw: bool = False) -> Any:
    """The JSON body (or, with raw, the bytes) at url; None on any HTTP or network error."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read() if raw else json.load(response)
    except urllib.error.HTTPError as exc:  # e.g. 404 until the trace is stored
        exc.close()
        return None
    except OSError:
        return None


def _eventually(fetch: Callable[[], Any], what: str, deadline_s: float = 20) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        got = fetch()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing after {deadline_s}s")
        time.sleep(0.5)


@pytest.mark.usefixtures("infra")
def test_a_span_reaches_jaeger_and_zipkin() -> None:
    trace_id = _send_span("deploy-smoke")

    def jaeger() -> Any:
        body = _get_json(f"{JAEGER}/api/traces/{trace_id}")
        return body and body.get("data")

    def zipkin() -> Any:
        return _get_json(f"{ZIPKIN}/api/v2/trace/{trace_id}")

    (trace,) = _eventually(jaeger, f"Jaeger trace {trace_id}")
    assert trace["traceID"] == trace_id
    assert [s["operationName"] for s in trace["spans"]] == ["deploy-smoke"]
    assert trace["processes"][trace["spans"][0]["processID"]]["serviceName"] == "deploy-smoke"

    (span,) = _eventually(zipkin, f"Zipkin trace {trace_id}")
    assert span["traceId"] == trace_id
    assert span["name"] == "deploy-smoke"
    assert span["localEndpoint"]["serviceName"] == "deploy-smoke"


def _query(url: str, **params: str) -> Any:
    return _get_json(f"{url}?{urllib.parse.urlencode(params)}")


@pytest.mark.usefixtures("infra")
def test_metrics_reach_victoriametrics_under_their_prometheus_names() -> None:
    """Within the poll's 20 s, so VictoriaMetrics' -search.latencyOffset (30 s by default)
    must be lowered for this to pass."""
    service = f"deploy-smoke-{uuid.uuid4().hex[:12]}"
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=OTLP, insecure=True), export_interval_millis=3_600_000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    )
    duration = provider.get_meter("tests.deploy").create_histogram(
        "http.server.request.duration", unit="s"
    )
    for seconds in (0.004, 0.02, 0.3):
        duration.record(seconds, {"http.request.method": "GET", "http.route": "/users/{id}"})
    provider.shutdown()  # exports once, now

    query = f'sum(http_server_request_duration_seconds_count{{service_name="{service}"}})'

    def count() -> Any:
        body = _query(f"{VM}/api/v1/query", query=query)
        return body and body["data"]["result"]

    (series,) = _eventually(count, f"VictoriaMetrics: {query}")
    assert series["value"][1] == "3"
    bucket = f'http_server_request_duration_seconds_bucket{{service_name="{service}"}}'
    body = _query(f"{VM}/api/v1/query", query=bucket)
    routes = {s["metric"]["http_route"] for s in body["data"]["result"]}
    assert routes == {"/users/{id}"}


@pytest.mark.usefixtures("infra")
def test_a_log_record_reaches_victorialogs_with_its_trace_and_span_id() -> None:
    service = f"deploy-smoke-{uuid.uuid4().hex[:12]}"
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=OTLP, insecure=True))
    )
    message = f'one line\nand "another", from {service}'
    with tracer_provider.get_tracer("tests.deploy").start_as_current_span("deploy-smoke") as span:
        logger_provider.get_logger("tests.deploy").emit(
            body=message, severity_number=SeverityNumber.INFO, severity_text="INFO"
        )
        context = span.get_span_context()
    logger_provider.shutdown()
    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")

    def records() -> Any:
        # LogsQL answers one JSON object a line.
        query = urllib.parse.urlencode({"query": f"trace_id:{trace_id}"})
        raw = _get_json(f"{VL}/select/logsql/query?{query}", raw=True)
        return raw and [json.loads(line) for line in raw.splitlines()]

    (record,) = _eventually(records, f"VictoriaLogs: trace_id:{trace_id}")
    assert record["_msg"] == message
    assert record["trace_id"] == trace_id
    assert record["span_id"] == span_id
    assert record["service.name"] == service
    assert record["severity_text"] == "INFO"


@pytest.mark.usefixtures("infra")
def test_jaegers_monitor_reads_the_red_metrics_from_victoriametrics() -> None:
    """The span_metrics connector's counts, sent over OTLP to VictoriaMetrics, answered
    by Jaeger's Monitor API (what the Monitor tab draws) through its PromQL queries."""
    service = f"deploy-smoke-{uuid.uuid4().hex[:12]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=OTLP, insecure=True)))
    with provider.get_tracer("tests.deploy").start_as_current_span("GET /", kind=SpanKind.SERVER):
        pass
    provider.shutdown()

    def calls() -> Any:
        body = _query(f"{JAEGER}/api/metrics/calls", service=service, spanKind="server")
        return body and body["metrics"]

    (series,) = _eventually(calls, f"Jaeger /api/metrics/calls for {service}", deadline_s=30)
    assert {"name": "service_name", "value": service} in series["labels"]
    assert series["metricPoints"]


@pytest.mark.usefixtures("infra")
def test_zipkin_and_jaeger_link_a_trace_to_its_logs() -> None:
    """Zipkin's UI config (its Logs button) and the UI config Jaeger injects into its
    page (here the placeholder page, which gets the same injection as the real UI)."""
    logs_url = _get_json(f"{ZIPKIN}/zipkin/config.json")["logsUrl"]
    (native,) = re.findall(r'^LOGS_URL="(.*)"$', (DEPLOY / "stack.sh").read_text(), re.MULTILINE)
    assert logs_url == native.replace("$VL_PORT", dotenv()["VICTORIALOGS_PORT"])
    assert logs_url.startswith(f"{VL}/select/vmui/#/?query=trace_id:{{traceId}}&")

    page = _get_json(f"{JAEGER}/", raw=True).decode()
    (injected,) = re.findall(r"^JAEGER_CONFIG = (\{.*\});$", page, re.MULTILINE)
    config = json.loads(injected)
    assert (
        config["linkPatterns"]
        == json.loads((DEPLOY / "jaeger-ui.json").read_text())["linkPatterns"]
    )
    (pattern,) = config["linkPatterns"]
    assert pattern["url"].replace("#{traceID}", "{traceId}") == logs_url

    for ui in (f"{VL}/select/vmui/", f"{VM}/vmui/"):
        assert b"<html" in _get_json(ui, raw=True).lower(), ui


def test_down_leaves_nothing_behind(infra: bool) -> None:
    """`down` on the running stack (the fixture's own `down` is then a no-op)."""
    if not infra:
        pytest.skip("the backends were already running before this test: not stopping them")
    down = _stack("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [p for p in PORTS if _listening(p)] == []
