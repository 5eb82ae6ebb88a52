"""Metrics and logs beside the traces: the edge's request histogram and OTLP log records."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cello import Request
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, Metric

from cello_problem import HTTPError
from cello_runner import configure_logging

# The stable HTTP semantic conventions' advice for http.server.request.duration, in s.
ADVISED_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def request(path: str, **headers: str) -> Request:
    return Request("GET", path, params={"id": path.rsplit("/", 1)[-1]}, headers=headers)


def metrics_named(reader: InMemoryMetricReader, name: str) -> list[Metric]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
    ]


def duration_points(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    points: list[HistogramDataPoint] = []
    for metric in metrics_named(reader, "http.server.request.duration"):
        points.extend(metric.data.data_points)  # type: ignore[arg-type]  # a histogram's
    return points


@pytest.fixture
def items(make_app):
    """An app with a route that answers 200 and one that fails with 503."""
    traced = make_app("items-service")

    @traced.app.get("/items/{id}")
    def get_item(request: Request) -> dict[str, Any]:
        logging.getLogger("items").info("looked up an item")
        return {"id": request.params["id"]}

    @traced.app.get("/broken/{id}")
    def broken(request: Request) -> dict[str, Any]:
        raise HTTPError(503, "the store is away")

    return traced


# -- metrics ---------------------------------------------------------------------------------


def test_edge_histogram_has_the_stable_name_unit_attributes_and_buckets(items) -> None:
    items.call("GET", "/items/{id}", request("/items/7"))
    items.call("GET", "/items/{id}", request("/items/8"))
    items.call("GET", "/broken/{id}", request("/broken/1"))

    (metric,) = metrics_named(items.metrics, "http.server.request.duration")
    assert metric.unit == "s"
    points = {point.attributes["http.route"]: point for point in metric.data.data_points}
    assert set(points) == {"/items/{id}", "/broken/{id}"}
    ok, failed = points["/items/{id}"], points["/broken/{id}"]
    assert dict(ok.attributes) == {
        "http.request.method": "GET",
        "http.route": "/items/{id}",
        "http.response.status_code": 200,
        "url.scheme": "http",
    }
    assert dict(failed.attributes) == {
        "http.request.method": "GET",
        "http.route": "/broken/{id}",
        "http.response.status_code": 503,
        "url.scheme": "http",
        "error.type": "503",
    }
    assert (ok.count, failed.count) == (2, 1)
    assert tuple(ok.explicit_bounds) == ADVISED_BUCKETS
    assert 0 < ok.sum < 1.0  # seconds, not milliseconds


def test_every_request_is_counted_sampled_or_not_with_an_exemplar_only_when_sampled(
    make_app,
) -> None:
    traced = make_app("items-service", sampling_rate=0.0)

    @traced.app.get("/items/{id}")
    def get_item(request: Request) -> dict[str, str]:
        return {"id": request.params["id"]}

    traced.call("GET", "/items/{id}", request("/items/1"))  # a new trace, not sampled
    traced.call("GET", "/items/{id}", request("/items/2", traceparent=UNSAMPLED_PARENT))
    traced.call("GET", "/items/{id}", request("/items/3", traceparent=SAMPLED_PARENT))

    (point,) = duration_points(traced.metrics)
    assert point.count == 3
    (span,) = traced.spans()  # only the sampled parent's child was recorded
    assert span.context is not None
    # The trace-based exemplar filter keeps the sampled request only, so a bucket
    # leads to a trace the backends hold.
    assert [(e.trace_id, e.span_id) for e in point.exemplars] == [
        (span.context.trace_id, span.context.span_id)
    ]


def test_excluded_paths_are_not_counted(make_app) -> None:
    traced = make_app("items-service")

    @traced.app.get("/health")
    def health(request: Request) -> dict[str, str]:
        return {"status": "ok"}

    traced.call("GET", "/health", Request("GET", "/health", headers={}))

    assert duration_points(traced.metrics) == []


@pytest.mark.parametrize(
    ("env", "config"),
    [
        ({}, {"export_metrics": False}),
        ({"OTEL_METRICS_EXPORTER": "none"}, {}),
        ({"OTEL_SDK_DISABLED": "true"}, {}),
    ],
    ids=["export_metrics=False", "OTEL_METRICS_EXPORTER=none", "OTEL_SDK_DISABLED=true"],
)
def test_switched_off_metrics_export_nothing(
    make_app, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], config: dict[str, Any]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    traced = make_app("items-service", **config)

    @traced.app.get("/items/{id}")
    def get_item(request: Request) -> dict[str, str]:
        return {"id": request.params["id"]}

    traced.call("GET", "/items/{id}", request("/items/1"))

    telemetry = traced.app.telemetry
    assert telemetry is not None
    assert (telemetry.meter_provider, telemetry.server_metrics) == (None, None)
    # The reader was never registered with a provider: it has nothing to collect.
    assert traced.metrics.get_metrics_data() is None


def test_metrics_are_on_by_default(items) -> None:
    items.call("GET", "/items/{id}", request("/items/1"))

    assert [point.count for point in duration_points(items.metrics)] == [1]


# -- logs ------------------------------------------------------------------------------------


def test_the_library_alone_installs_no_log_handler(items) -> None:
    items.call("GET", "/items/{id}", request("/items/1"))

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = [h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers]
    assert not [h for h in handlers if isinstance(h, LoggingHandler)]
    assert items.app.telemetry.logger_provider is None  # no pipeline until asked for


def otlp_logs(items) -> tuple[InMemoryLogRecordExporter, logging.Handler]:
    """What a service's start-up does, with an in-memory exporter in place of OTLP's."""
    exporter = InMemoryLogRecordExporter()
    handler = items.app.telemetry.log_handler(exporter)
    assert handler is not None
    configure_logging("items-service", otlp=handler)
    return exporter, handler


def finished(items, exporter: InMemoryLogRecordExporter) -> list[ReadableLogRecord]:
    assert items.app.telemetry.logger_provider.force_flush(5000)
    return list(exporter.get_finished_logs())


def test_a_log_record_inside_a_request_carries_its_trace_span_and_request_id(items) -> None:
    exporter, _ = otlp_logs(items)

    items.call("GET", "/items/{id}", request("/items/7", **{"x-request-id": "req-42"}))

    (span,) = items.spans()
    records = {r.log_record.body: r for r in finished(items, exporter)}
    assert set(records) == {"looked up an item", "GET /items/{id} 200"}  # and the access log
    for record in records.values():
        assert span.context is not None
        assert record.log_record.trace_id == span.context.trace_id
        assert record.log_record.span_id == span.context.span_id
        assert record.log_record.attributes["request.id"] == "req-42"
        assert record.resource.attributes["service.name"] == "items-service"
    access = records["GET /items/{id} 200"]
    assert access.log_record.severity_text == "INFO"
    assert access.log_record.attributes["duration_ms"] >= 0


@pytest.mark.parametrize(
    "message",
    ["two\nlines\r\nand a \"quoted\" 'one'", '{"level": "error", "forged": true}', "x" * 10_000],
    ids=["newlines-and-quotes", "json-lookalike", "10-kB"],
)
def test_an_awkward_message_arrives_as_one_record(items, capsys, message: str) -> None:
    exporter, _ = otlp_logs(items)

    logging.getLogger("items").warning(message)

    (record,) = finished(items, exporter)
    assert record.log_record.body == message
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [json.loads(line)["message"] for line in lines] == [message]  # one stderr line


def test_logs_switched_off_get_no_handler(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    traced = make_app("items-service")

    assert traced.app.telemetry.log_handler() is None


def test_logs_of_a_disabled_sdk_get_no_handler(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    traced = make_app("items-service")

    assert traced.app.telemetry.log_handler() is None


def test_configure_logging_installs_the_otlp_handler_once(items) -> None:
    _, handler = otlp_logs(items)
    configure_logging("items-service", otlp=handler)

    root = logging.getLogger()
    assert [h for h in root.handlers if isinstance(h, LoggingHandler)] == [handler]
