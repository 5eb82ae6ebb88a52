"""``make new-service``: a scaffolded service comes up traced and joins its caller's trace.

Each test scaffolds into a temporary directory and leaves ``services/`` alone. The
service that joins the trace is the scaffolded folder alone, copied next to the library
and installed on its own (:mod:`support.carry_out`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cello_telemetry import TracedClient
from support.carry_out import carry_out, isolated_env
from support.otlp import OtlpReceiver
from support.traces import Span, build_tree, poll_until
from tools.ports import free_ports
from tools.run import Service, ServiceGroup

REPO = Path(__file__).resolve().parents[2]
CALLER = "test-caller"


def _new_service(*args: str | int | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.new_service", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def _scaffold(tmp_path: Path, name: str, port: int) -> Path:
    """Scaffold ``name`` into ``tmp_path``; return the service's folder."""
    services, tests = tmp_path / "services", tmp_path / "tests"
    done = _new_service(name, "--port", port, "--services", services, "--tests", tests)
    assert done.returncode == 0, done.stderr
    assert f"  {name}:\n    build:" in done.stdout  # the compose entry, printed
    assert f"SERVICE: {name}" in done.stdout
    assert f'PORT: "{port}"' in done.stdout
    return services / name


@pytest.fixture
def shipping(tmp_path: Path, receiver: OtlpReceiver) -> Iterator[str]:
    """A scaffolded ``shipping`` service, carried out alone, running and exporting to
    ``receiver``. The lock does not know it yet: its dependencies are the library's."""
    (port,) = free_ports(1)
    folder = _scaffold(tmp_path / "scaffold", "shipping", port)
    python = carry_out(folder, tmp_path / "copy", locked_as="cello-telemetry")
    group = ServiceGroup(
        [Service("shipping", "shipping", port, isolated_env(), python=str(python))],
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
        log_dir=tmp_path / "logs",
    )
    group.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        group.stop()


def _as_span(span: ReadableSpan) -> Span:
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    return Span(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=None if parent is None else f"{parent.span_id:016x}",
        name=span.name,
        kind=span.kind.name,
        service=CALLER,
        attributes=dict(span.attributes or {}),
    )


def test_scaffolded_service_joins_the_trace_of_its_caller(
    shipping: str, receiver: OtlpReceiver
) -> None:
    health = httpx.get(f"{shipping}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["service"] == "shipping-service"

    # The caller: a span of its own and, inside it, a call through TracedClient,
    # exactly as the gateway calls users.
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": CALLER}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def call() -> httpx.Response:
        client = TracedClient(shipping, peer_service="shipping-service", tracer_provider=provider)
        try:
            with provider.get_tracer("test").start_as_current_span("caller"):
                return await client.request("GET", "/shipping/{id}", path_params={"id": 42})
        finally:
            await client.aclose()

    response = asyncio.run(call())
    assert response.status_code == 200, response.text
    assert response.json() == {"id": 42, "service": "shipping-service"}

    caller_spans = [_as_span(span) for span in exporter.get_finished_spans()]
    trace_id = caller_spans[0].trace_id
    service_spans = poll_until(
        lambda: receiver.spans(trace_id),
        lambda got: len(got) >= 2,
        timeout=15,
        what=f"shipping-service's spans in trace {trace_id}",
    )
    tree = build_tree([*caller_spans, *service_spans])
    assert tree.shape() == (
        CALLER, "INTERNAL", "caller", (
            (CALLER, "CLIENT", "GET /shipping/{id}", (
                ("shipping-service", "SERVER", "GET /shipping/{id}", (
                    ("shipping-service", "INTERNAL", "shipping: look up", ()),
                )),
            )),
        ),
    )  # fmt: skip
    (server,) = [span for span in service_spans if span.kind == "SERVER"]
    assert server.attributes["resource.service.name"] == "shipping-service"
    assert server.attributes["http.route"] == "/shipping/{id}"
    assert server.attributes["request.id"] == response.headers["x-request-id"]
    assert response.headers["traceparent"].startswith(f"00-{trace_id}-{server.span_id}-")


def test_scaffold_passes_lint_and_its_own_test(tmp_path: Path) -> None:
    folder = _scaffold(tmp_path, "billing", free_ports(1)[0])
    generated = [folder, tmp_path / "tests"]
    config = ["--config", str(REPO / "pyproject.toml")]
    for check in (["check"], ["format", "--check"]):
        ruff = [sys.executable, "-m", "ruff", *check, *config, *map(str, generated)]
        done = subprocess.run(ruff, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr

    test_file = tmp_path / "tests" / "test_billing_service.py"
    pytest_args = ["-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO)]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(folder / "src")},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Orders", "lowercase Python identifier"),
        ("order-items", "lowercase Python identifier"),
        ("9lives", "lowercase Python identifier"),
        ("class", "lowercase Python identifier"),
        ("users", "is taken"),  # a service
        ("tools", "is taken"),  # the tools' package
        ("email", "is taken"),  # the standard library's
    ],
)
def test_new_service_refuses_a_bad_or_taken_name(tmp_path: Path, name: str, why: str) -> None:
    done = _new_service(name, "--tests", tmp_path)
    assert done.returncode == 2
    assert why in done.stderr
    assert not any(tmp_path.iterdir())  # nothing written
