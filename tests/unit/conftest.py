"""Shared unit-test fixtures: a clean environment and traced apps with in-memory exporters."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cello import Request, Response
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cello_telemetry import App, OpenTelemetryConfig
from cello_telemetry import request_id as request_id_module


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* (or LOG_LEVEL) variable from the developer's shell reaches a test."""
    for name in list(os.environ):
        if name.startswith("OTEL_") or name == "LOG_LEVEL":
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _restore_logging_and_context() -> Iterator[None]:
    """Undo what ``enable_telemetry`` does to the root logger, and drop leaked contexts.

    ``configure_logging`` installs a stderr handler bound to pytest's capture stream of the
    test that ran it; leaving it behind would write to a closed stream later.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers = handlers
    root.setLevel(level)
    # A leak is asserted where it matters (test_server_spans); here it is only contained.
    otel_context.attach(otel_context.Context())
    request_id_module._current.set(None)


def run_handler(handler: Callable[[Request], Any], request: Request) -> Response:
    """Call a wrapped handler the way Cello does, sync or async."""
    if inspect.iscoroutinefunction(handler):
        return asyncio.run(handler(request))
    response = handler(request)
    assert isinstance(response, Response)
    return response


@dataclass
class TracedApp:
    """An ``App`` whose spans and metrics go to its own in-memory exporter and reader."""

    app: App
    exporter: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def call(self, method: str, route: str, request: Request) -> Response:
        return run_handler(self.app.handler_for(method, route), request)

    def spans(self) -> list[ReadableSpan]:
        telemetry = self.app.telemetry
        assert telemetry is not None
        if telemetry.provider is not None:
            assert telemetry.provider.force_flush(5000)
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def make_app() -> Iterator[Callable[..., TracedApp]]:
    """Build traced apps; each one's telemetry is shut down after the test."""
    built: list[App] = []

    def factory(
        service_name: str = "test-service", *, request_ids: bool = True, **config: Any
    ) -> TracedApp:
        app = App()
        if request_ids:
            app.enable_request_id()
        exporter, metrics = InMemorySpanExporter(), InMemoryMetricReader()
        app.enable_telemetry(
            OpenTelemetryConfig(service_name=service_name, **config),
            exporter=exporter,
            metric_reader=metrics,
        )
        built.append(app)
        return TracedApp(app, exporter, metrics)

    yield factory
    for app in built:
        if app.telemetry is not None:
            app.telemetry.shutdown()
