"""BatchExportProcessor: batching, the queue cap, failure accounting, flush and shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, TraceFlags

from cello_telemetry.export import BatchExportProcessor, ExportStats

LOGGER = "cello_telemetry.export"
LONG_DELAY_MS = 60_000  # the timer never fires during a test; only size, flush or shutdown do
SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


class FakeExporter(SpanExporter):
    """Records batches; results come from a script, an exception or a gate."""

    def __init__(self, results: Sequence[SpanExportResult | Exception] = ()) -> None:
        self.batches: list[list[str]] = []
        self.calls = 0
        self.shutdowns = 0
        self._results = list(results)
        self.started = threading.Event()
        self.gate: threading.Event | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)  # bounded, and released by the test or its teardown
        outcome = self._results.pop(0) if self._results else SUCCESS
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is SUCCESS:
            self.batches.append([s.name for s in spans])
        return outcome

    def shutdown(self) -> None:
        self.shutdowns += 1

    @property
    def exported(self) -> list[str]:
        return [name for batch in self.batches for name in batch]


def span(name: str, *, sampled: bool = True, number: int = 1) -> ReadableSpan:
    context = SpanContext(
        trace_id=0x1000 + number,
        span_id=0x2000 + number,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return ReadableSpan(name=name, context=context)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.fixture
def make_processor() -> Iterator[Callable[..., BatchExportProcessor]]:
    built: list[tuple[BatchExportProcessor, FakeExporter]] = []

    def factory(exporter: FakeExporter, **options: int) -> BatchExportProcessor:
        options.setdefault("schedule_delay_ms", LONG_DELAY_MS)
        processor = BatchExportProcessor(exporter, **options)
        built.append((processor, exporter))
        return processor

    yield factory
    for processor, exporter in built:
        if exporter.gate is not None:
            exporter.gate.set()
        processor.shutdown(timeout_millis=1000)


# -- batching ------------------------------------------------------------------------------------


def test_force_flush_exports_pending_spans_in_order(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter, max_export_batch_size=3)
    names = [f"s{i}" for i in range(7)]

    for i, name in enumerate(names):
        processor.on_end(span(name, number=i))

    assert processor.force_flush(5000) is True
    assert exporter.exported == names
    assert all(1 <= len(batch) <= 3 for batch in exporter.batches)
    assert processor.stats.as_dict() == {
        "exported": 7,
        "dropped_queue_full": 0,
        "dropped_export_failed": 0,
        "dropped_after_shutdown": 0,
        "pending": 0,
    }


def test_a_full_batch_is_sent_without_waiting_for_the_timer(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter, max_export_batch_size=4)

    for i in range(4):
        processor.on_end(span(f"s{i}", number=i))

    wait_until(lambda: processor.stats.exported == 4)
    assert exporter.batches == [["s0", "s1", "s2", "s3"]]


def test_the_timer_sends_a_partial_batch(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter, schedule_delay_ms=20, max_export_batch_size=512)

    processor.on_end(span("lonely"))

    wait_until(lambda: exporter.batches == [["lonely"]])
    assert processor.stats.exported == 1


def test_unsampled_spans_are_ignored(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter)

    processor.on_end(span("unsampled", sampled=False))
    processor.on_end(ReadableSpan(name="no-context", context=None))
    processor.on_end(span("sampled"))

    assert processor.stats.pending == 1
    assert processor.force_flush(5000) is True
    assert exporter.batches == [["sampled"]]


def test_provider_integration_skips_unsampled_spans(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter)
    on = TracerProvider()
    off = TracerProvider(sampler=ALWAYS_OFF)
    on.add_span_processor(processor)
    off.add_span_processor(processor)

    with on.get_tracer("t").start_as_current_span("recorded"):
        pass
    with off.get_tracer("t").start_as_current_span("dropped"):
        pass

    assert processor.force_flush(5000) is True
    assert exporter.batches == [["recorded"]]


# -- the queue cap -------------------------------------------------------------------------------


def test_queue_cap_drops_and_counts_with_a_single_warning(make_processor, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    exporter = FakeExporter()
    processor = make_processor(exporter, max_queue_size=5, max_export_batch_size=1000)

    for i in range(105):
        processor.on_end(span(f"s{i}", number=i))

    stats = processor.stats
    assert (stats.pending, stats.dropped_queue_full) == (5, 100)
    assert messages(caplog, logging.WARNING) == [
        "span queue full (5 spans): dropping new spans until export catches up"
    ]
    assert processor.force_flush(5000) is True
    assert exporter.exported == ["s0", "s1", "s2", "s3", "s4"]
    assert processor.stats.exported == 5


# -- export failures -----------------------------------------------------------------------------


def test_failures_are_counted_and_logged_once_until_recovery(make_processor, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    exporter = FakeExporter([FAILURE, FAILURE, FAILURE, SUCCESS, SUCCESS, FAILURE])
    processor = make_processor(exporter, max_export_batch_size=2)

    for i in range(6):
        processor.on_end(span(f"s{i}", number=i))
        assert processor.force_flush(5000) is True

    assert exporter.calls == 6
    assert exporter.exported == ["s3", "s4"]
    assert processor.stats.as_dict() == {
        "exported": 2,
        "dropped_export_failed": 4,
        "dropped_after_shutdown": 0,
        "dropped_queue_full": 0,
        "pending": 0,
    }
    failed = "span export failed; dropping spans until the collector is reachable"
    assert messages(caplog, logging.WARNING) == [failed, failed]
    assert messages(caplog, logging.INFO) == ["span export recovered (3 spans dropped so far)"]


def test_failed_batches_count_every_span(make_processor) -> None:
    exporter = FakeExporter([FAILURE])
    processor = make_processor(exporter, max_export_batch_size=10)

    for i in range(4):
        processor.on_end(span(f"s{i}", number=i))
    assert processor.force_flush(5000) is True

    assert processor.stats.dropped_export_failed == 4
    assert exporter.batches == []


def test_a_raising_exporter_is_counted_and_the_worker_survives(make_processor, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    exporter = FakeExporter([RuntimeError("exporter bug"), RuntimeError("again")])
    processor = make_processor(exporter)

    for i in range(3):
        processor.on_end(span(f"s{i}", number=i))
        assert processor.force_flush(5000) is True

    assert exporter.calls == 3
    assert exporter.exported == ["s2"]
    assert (processor.stats.dropped_export_failed, processor.stats.exported) == (2, 1)
    raised = [r for r in caplog.records if r.getMessage() == "span exporter raised"]
    assert raised
    assert raised[0].exc_info is not None
    assert str(raised[0].exc_info[1]) == "exporter bug"
    assert messages(caplog, logging.WARNING) == [
        "span export failed; dropping spans until the collector is reachable"
    ]
    assert messages(caplog, logging.INFO) == ["span export recovered (2 spans dropped so far)"]


# -- flush and shutdown --------------------------------------------------------------------------


def test_force_flush_reports_an_export_still_in_flight(make_processor) -> None:
    exporter = FakeExporter()
    exporter.gate = threading.Event()
    processor = make_processor(exporter)
    processor.on_end(span("slow"))

    started = time.monotonic()
    assert processor.force_flush(timeout_millis=100) is False
    assert time.monotonic() - started < 2.0
    assert exporter.started.wait(5)

    exporter.gate.set()
    assert processor.force_flush(5000) is True
    assert exporter.batches == [["slow"]]


def test_shutdown_flushes_pending_spans_and_stops(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter)
    for i in range(3):
        processor.on_end(span(f"s{i}", number=i))

    processor.shutdown(timeout_millis=5000)

    assert exporter.exported == ["s0", "s1", "s2"]
    assert exporter.shutdowns == 1
    processor.on_end(span("late"))
    assert processor.stats == ExportStats(exported=3, dropped_after_shutdown=1)


def test_shutdown_is_bounded_with_a_slow_exporter_and_counts_the_rest(make_processor) -> None:
    exporter = FakeExporter()
    exporter.gate = threading.Event()
    processor = make_processor(exporter, max_export_batch_size=1)
    for i in range(5):
        processor.on_end(span(f"s{i}", number=i))
    processor.force_flush(timeout_millis=1)  # wake the worker: it blocks on the first span
    assert exporter.started.wait(5)

    started = time.monotonic()
    processor.shutdown(timeout_millis=200)
    elapsed = time.monotonic() - started

    assert 0.15 <= elapsed < 2.0
    assert exporter.shutdowns == 1
    # s0 is in flight; s1..s4 never left the process and are counted as lost.
    stats = processor.stats
    assert (stats.dropped_export_failed, stats.pending, stats.exported) == (4, 0, 0)

    exporter.gate.set()
    wait_until(lambda: processor.stats.exported == 1)
    assert exporter.batches == [["s0"]]


def test_spans_ended_after_shutdown_are_counted_not_exported(make_processor) -> None:
    exporter = FakeExporter()
    processor = make_processor(exporter)
    processor.on_end(span("before"))
    processor.shutdown(timeout_millis=1000)

    processor.on_end(span("late-1"))
    processor.on_end(span("late-2"))
    processor.on_end(span("late-unsampled", sampled=False))

    assert exporter.exported == ["before"]
    assert processor.stats.dropped_after_shutdown == 2
