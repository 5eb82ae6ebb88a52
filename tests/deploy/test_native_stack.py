"""The native tracing backends end to end: `deploy/stack.sh up --infra-only` starts
Zipkin, Jaeger and the collector on loopback; a span sent over OTLP/gRPC to the
collector must come out in both Jaeger's and Zipkin's query APIs; `down` must leave
no process and no listening port behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from deploytools import DEPLOY
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

pytestmark = pytest.mark.e2e

STACK = DEPLOY / "stack.sh"
PORTS = (4317, 4318, 8888, 8889, 13133, 9411, 14317, 14318, 14132, 14133, 14888, 16685, 16686)


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
    """Jaeger, Zipkin and the collector answer already (e.g. after `make up`)."""
    urls = ("http://127.0.0.1:16686/", "http://127.0.0.1:9411/health")
    return _listening(4317) and all(_get_json(url, raw=True) is not None for url in urls)


@pytest.fixture(scope="module")
def infra(tool: Callable[[str], Path]) -> Iterator[bool]:
    """Yields whether this module started the backends (and so must stop them)."""
    if _already_up():
        yield False  # someone's running stack: use it, leave it running
        return
    for name in ("otelcol", "jaeger", "zipkin"):
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
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint="http://127.0.0.1:4317", insecure=True))
    )
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


def _eventually(fetch: Callable[[], Any], what: str, deadline_s: float = 30) -> Any:
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
        body = _get_json(f"http://127.0.0.1:16686/api/traces/{trace_id}")
        return body and body.get("data")

    def zipkin() -> Any:
        return _get_json(f"http://127.0.0.1:9411/api/v2/trace/{trace_id}")

    (trace,) = _eventually(jaeger, f"Jaeger trace {trace_id}")
    assert trace["traceID"] == trace_id
    assert [s["operationName"] for s in trace["spans"]] == ["deploy-smoke"]
    assert trace["processes"][trace["spans"][0]["processID"]]["serviceName"] == "deploy-smoke"

    (span,) = _eventually(zipkin, f"Zipkin trace {trace_id}")
    assert span["traceId"] == trace_id
    assert span["name"] == "deploy-smoke"
    assert span["localEndpoint"]["serviceName"] == "deploy-smoke"


def test_down_leaves_nothing_behind(infra: bool) -> None:
    """`down` on the running stack (the fixture's own `down` is then a no-op)."""
    if not infra:
        pytest.skip("the backends were already running before this test: not stopping them")
    down = _stack("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [p for p in PORTS if _listening(p)] == []
