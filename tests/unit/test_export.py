"""Span counters and outage logging around the stock BatchSpanProcessor and exporter."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from cello_telemetry import OpenTelemetryConfig, TelemetryConfigError
from cello_telemetry import telemetry as telemetry_module
from cello_telemetry.export import CountingSpanExporter
from cello_telemetry.telemetry import Telemetry


@pytest.fixture(autouse=True)
def _no_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """These pipelines are about spans: no periodic metric reader exports anywhere."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


OK, FAIL = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


class FakeExporter(SpanExporter):
    """Answers each export with the next of ``results`` (then success); can hold exports."""

    def __init__(self, *results: SpanExportResult | Exception) -> None:
        self.results = list(results)
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait()
        self.batches.append([span.name for span in spans])
        result = self.results.pop(0) if self.results else OK
        if isinstance(result, Exception):
            raise result
        return result

    def shutdown(self) -> None:
        self.shut_down = True


def spans(count: int) -> list[ReadableSpan]:
    return [ReadableSpan(name=f"span-{n}") for n in range(count)]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cello_telemetry.export"]


def test_counts_every_span_exported_and_failed() -> None:
    counting = CountingSpanExporter(FakeExporter(OK, FAIL, OK))

    results = [counting.export(spans(n)) for n in (3, 2, 4)]

    assert results == [OK, FAIL, OK]
    assert (counting.exported, counting.failed) == (7, 2)


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    counting = CountingSpanExporter(FakeExporter(OK, FAIL, FAIL, FAIL, OK, FAIL))
    caplog.set_level(logging.WARNING, "cello_telemetry.export")

    for _ in range(6):
        counting.export(spans(2))

    lines = warnings(caplog)
    assert len(lines) == 3, lines
    assert lines[0].startswith("span export failed")
    assert lines[1].startswith("span export recovered")
    assert "6 spans were lost" in lines[1]
    assert lines[2].startswith("span export failed")


def test_a_raising_exporter_is_a_failed_batch(caplog: pytest.LogCaptureFixture) -> None:
    counting = CountingSpanExporter(FakeExporter(RuntimeError("boom")))

    assert counting.export(spans(3)) is FAIL
    assert counting.failed == 3
    assert any(r.exc_info for r in caplog.records)


def test_after_the_shutdown_deadline_exports_fail_at_once() -> None:
    inner = FakeExporter()
    counting = CountingSpanExporter(inner)
    counting.stop_exporting_after(-1)

    assert counting.export(spans(2)) is FAIL
    assert inner.batches == []  # the exporter was not asked
    assert counting.failed == 2


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Telemetry, FakeExporter]]:
    """A service's pipeline with a fake exporter, a long batch delay and, as a service is
    deployed, the SDK's processor metrics switched on."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    exporter = FakeExporter()
    telemetry = Telemetry(OpenTelemetryConfig(service_name="svc"), exporter)
    yield telemetry, exporter
    exporter.release.set()
    telemetry.shutdown()


def end_spans(telemetry: Telemetry, count: int) -> None:
    for n in range(count):
        telemetry.tracer.start_span(f"span-{n}").end()


def span_stats(telemetry: Telemetry) -> dict[str, int | None]:
    stats = telemetry.stats()["spans"]
    assert isinstance(stats, dict)
    return stats


def test_health_counts_exported_and_pending_spans(pipeline) -> None:
    telemetry, exporter = pipeline

    end_spans(telemetry, 5)
    assert span_stats(telemetry)["pending"] == 5
    assert telemetry.provider is not None
    assert telemetry.provider.force_flush()

    assert span_stats(telemetry) == {
        "exported": 5,
        "dropped_export_failed": 0,
        "dropped_queue_full": 0,
        "dropped_after_shutdown": 0,
        "pending": 0,
    }
    assert sorted(name for batch in exporter.batches for name in batch) == [
        f"span-{n}" for n in range(5)
    ]


def test_without_the_sdk_metrics_only_the_export_counts_are_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    telemetry = Telemetry(OpenTelemetryConfig(service_name="svc"), FakeExporter())
    try:
        end_spans(telemetry, 3)
        assert telemetry.provider is not None
        assert telemetry.provider.force_flush()
        assert span_stats(telemetry) == {
            "exported": 3,
            "dropped_export_failed": 0,
            "dropped_queue_full": None,
            "dropped_after_shutdown": None,
            "pending": None,
        }
    finally:
        telemetry.shutdown()
    assert "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED" not in os.environ  # nothing writes it


def test_a_full_queue_drops_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    exporter = FakeExporter()
    exporter.release.clear()
    telemetry = Telemetry(OpenTelemetryConfig(service_name="svc"), exporter)
    try:
        # A full batch: the processor takes it off the queue and is held in export, so
        # nothing drains the queue while the next spans arrive.
        end_spans(telemetry, 4)
        assert exporter.entered.wait(5)
        end_spans(telemetry, 10)
        stats = span_stats(telemetry)
        assert stats["dropped_queue_full"] == 6
        assert stats["pending"] == 4
    finally:
        exporter.release.set()
        telemetry.shutdown()


def test_spans_ended_after_shutdown_are_counted(pipeline) -> None:
    telemetry, _ = pipeline
    request_span = telemetry.tracer.start_span("still running")
    telemetry.shutdown()

    request_span.end()

    assert span_stats(telemetry)["dropped_after_shutdown"] == 1


def test_shutdown_exports_what_is_queued(pipeline) -> None:
    telemetry, exporter = pipeline
    end_spans(telemetry, 3)

    telemetry.shutdown()

    assert sorted(name for batch in exporter.batches for name in batch) == [
        "span-0",
        "span-1",
        "span-2",
    ]
    assert exporter.shut_down


def test_shutdown_gives_up_on_the_rest_when_its_time_is_up(
    monkeypatch: pytest.MonkeyPatch, pipeline
) -> None:
    telemetry, exporter = pipeline
    monkeypatch.setattr(telemetry_module, "SHUTDOWN_SECONDS", 0.0)
    end_spans(telemetry, 3)

    telemetry.shutdown()

    assert exporter.batches == []
    assert span_stats(telemetry)["dropped_export_failed"] == 3


def test_a_small_queue_caps_the_default_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")  # below our default batch of 128
    exporter = FakeExporter()
    telemetry = Telemetry(OpenTelemetryConfig(service_name="svc"), exporter)
    try:
        end_spans(telemetry, 64)  # a full queue is one full batch: exported at once
        assert telemetry.provider is not None
        assert telemetry.provider.force_flush()
    finally:
        telemetry.shutdown()

    assert [len(batch) for batch in exporter.batches] == [64]


def test_impossible_batch_settings_fail_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")

    with pytest.raises(TelemetryConfigError, match="OTEL_BSP_"):
        Telemetry(OpenTelemetryConfig(service_name="svc"), FakeExporter())
