"""JSON log lines: one object per line, with the trace context and request id of the moment."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from cello import Request
from opentelemetry.sdk.trace import TracerProvider

from cello_runner import configure_logging
from cello_settings import ConfigError
from cello_telemetry import JsonFormatter, request_id


class Capture:
    """A logger whose records are formatted by JsonFormatter into a string buffer."""

    def __init__(self, name: str) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JsonFormatter("orders-service"))
        self.logger = logging.getLogger(name)
        self.logger.handlers = [handler]
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)

    def lines(self) -> list[str]:
        text = self.stream.getvalue()
        assert text.endswith("\n")
        return text[:-1].split("\n")

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def capture(request: pytest.FixtureRequest) -> Iterator[Capture]:
    cap = Capture(f"test_logs.{request.node.name}")
    yield cap
    cap.logger.handlers = []


def test_line_outside_a_span_and_request(capture: Capture) -> None:
    capture.logger.warning("disk at %d%%", 91)

    (entry,) = capture.entries()
    assert set(entry) == {"time", "level", "logger", "message", "service.name"}
    assert entry["level"] == "warning"
    assert entry["logger"] == capture.logger.name
    assert entry["message"] == "disk at 91%"
    assert entry["service.name"] == "orders-service"
    assert entry["time"].endswith("Z")
    assert len(entry["time"]) == len("2025-01-01T00:00:00.000Z")


def test_line_inside_a_span_and_request_carries_their_ids(capture: Capture) -> None:
    tracer = TracerProvider().get_tracer("test")
    token = request_id.bind("req-77")
    try:
        with tracer.start_as_current_span("work") as span:
            capture.logger.info("inside")
        capture.logger.info("after the span")
    finally:
        request_id.unbind(token)
    capture.logger.info("after the request")

    inside, after_span, after_request = capture.entries()
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert inside["request.id"] == "req-77"
    assert inside["service.name"] == "orders-service"
    assert "trace_id" not in after_span
    assert after_span["request.id"] == "req-77"
    assert "request.id" not in after_request


@pytest.mark.parametrize(
    "message",
    [
        'ok\n{"level": "error", "message": "forged"}',
        "carriage\rreturn",
        "crlf\r\ninjected: yes",
        "line\u2028separator\u2029paragraph\x85nel",
        "caf\u00e9 \u2603 \U0001f600 \u202eevil",
        "nul\x00 esc\x1b[31m bell\x07",
    ],
)
def test_hostile_message_stays_on_one_ascii_line(capture: Capture, message: str) -> None:
    capture.logger.info("user said: %s", message)

    (line,) = capture.lines()
    assert line.isascii()
    assert "\r" not in line
    assert json.loads(line)["message"] == f"user said: {message}"


def test_extra_fields_are_output_and_unserializable_values_are_strings(capture: Capture) -> None:
    capture.logger.info("done", extra={"duration_ms": 1.5, "spans": {"exported": 3}, "obj": {1}})

    (entry,) = capture.entries()
    assert entry["duration_ms"] == 1.5
    assert entry["spans"] == {"exported": 3}
    assert entry["obj"] == "{1}"


def test_exception_is_one_field_on_the_same_line(capture: Capture) -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        capture.logger.exception("failed")

    (line,) = capture.lines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["message"] == "failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: bad\nvalue")


def test_configure_logging_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")

    configure_logging("svc")
    configure_logging("svc")

    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == "cello_runner"]
    assert len(ours) == 1
    assert isinstance(ours[0].formatter, JsonFormatter)
    assert root.level == logging.WARNING
    configure_logging("svc", level="debug")
    assert root.level == logging.DEBUG


@pytest.mark.parametrize(("level", "httpx_info"), [("info", False), ("debug", True)])
def test_httpx_logs_its_calls_only_at_debug(level: str, httpx_info: bool) -> None:
    httpx_logger = logging.getLogger("httpx")
    try:
        configure_logging("svc", level=level)

        assert httpx_logger.isEnabledFor(logging.INFO) is httpx_info
        assert httpx_logger.isEnabledFor(logging.WARNING)
    finally:
        httpx_logger.setLevel(logging.NOTSET)


@pytest.mark.parametrize("value", ["verbose", "notset", "10"])
def test_an_unknown_log_level_is_refused_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LOG_LEVEL", value)
    root = logging.getLogger()
    before = (list(root.handlers), root.level)

    with pytest.raises(ConfigError, match=f"LOG_LEVEL='{value.upper()}'"):
        configure_logging("svc")

    assert (list(root.handlers), root.level) == before


def test_enable_telemetry_configures_no_logging(make_app) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level

    make_app("orders-service")

    assert (list(root.handlers), root.level) == before
    for protocol in ("grpc", "http"):
        name = f"opentelemetry.exporter.otlp.proto.{protocol}"
        assert logging.getLogger(name).getEffectiveLevel() == root.getEffectiveLevel()


def test_access_log_of_a_request_leads_to_its_span(make_app, capsys) -> None:
    traced = make_app("orders-service")
    configure_logging("orders-service")  # what a service's start-up does

    @traced.app.get("/orders/{id}")
    def get_order(request: Request) -> dict[str, str]:
        return {"id": request.params["id"]}

    response = traced.call(
        "GET",
        "/orders/{id}",
        Request("GET", "/orders/5", params={"id": "5"}, headers={"x-request-id": "abc\r\n"}),
    )

    (span,) = traced.spans()
    assert span.context is not None
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"cello_telemetry.access"' in line]
    assert len(access) == 1
    entry = access[0]
    assert entry["message"] == "GET /orders/{id} 200"
    assert entry["service.name"] == "orders-service"
    assert entry["trace_id"] == f"{span.context.trace_id:032x}"
    assert entry["span_id"] == f"{span.context.span_id:016x}"
    assert entry["request.id"] == response.headers["X-Request-ID"] != "abc\r\n"
    assert isinstance(entry["duration_ms"], float)
