"""Batching span export that never blocks a request and counts what it loses.

The SDK's ``BatchSpanProcessor`` drops spans silently when its queue is full and
logs every failed export. For a service that must stay fast while the collector is
down, we want the opposite: a hard cap on memory, a count of every span that did not
leave the process, and one log line when export starts failing (and one when it
recovers), not one per batch. The exporter itself is the SDK's OTLP exporter.
"""

from __future__ import annotations

import collections
import inspect
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ExportStats:
    """Span counts since start-up, for ``/health`` and the shutdown log line."""

    exported: int = 0
    dropped_queue_full: int = 0
    dropped_export_failed: int = 0
    dropped_after_shutdown: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "exported": self.exported,
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_export_failed": self.dropped_export_failed,
            "dropped_after_shutdown": self.dropped_after_shutdown,
            "pending": self.pending,
        }


class BatchExportProcessor(SpanProcessor):
    """Queue ended spans and export them in batches from one background thread.

    Args:
        exporter: where batches go (an OTLP exporter in production, an in-memory
            one in tests).
        schedule_delay_ms: how long a span may wait for companions before the batch
            is sent. Short, so a trace shows up in the UI within a second.
        max_queue_size: spans held at most; beyond it new spans are dropped and counted.
        max_export_batch_size: spans per export call. Turning a batch into records
            holds the GIL, so a small batch keeps that pause short for requests.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        schedule_delay_ms: int = 200,
        max_queue_size: int = 8192,
        max_export_batch_size: int = 128,
    ) -> None:
        self._exporter = exporter
        self._delay = schedule_delay_ms / 1000
        self._max_queue_size = max_queue_size
        self._batch_size = max_export_batch_size
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._failing = False
        self._stats = ExportStats()
        self._worker = threading.Thread(target=self._run, name="span-export", daemon=True)
        self._worker.start()

    @property
    def stats(self) -> ExportStats:
        """A snapshot of the counters."""
        snapshot = ExportStats(**self._stats.as_dict())
        snapshot.pending = len(self._queue)
        return snapshot

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        if self._stopping:
            # A request that was still running when shutdown began; its span has
            # nowhere to go, but it is counted rather than lost without a trace.
            self._stats.dropped_after_shutdown += 1
            return
        if len(self._queue) >= self._max_queue_size:
            self._stats.dropped_queue_full += 1
            if self._stats.dropped_queue_full == 1:
                logger.warning(
                    "span queue full (%d spans): dropping new spans until export catches up",
                    self._max_queue_size,
                )
            return
        self._queue.append(span)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()

    def _drain(self, deadline: float | None = None) -> None:
        self._idle.clear()
        try:
            while self._queue and (deadline is None or time.monotonic() < deadline):
                batch = [
                    self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))
                ]
                self._export(batch)
        finally:
            self._idle.set()

    def _export(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            result = self._exporter.export(batch)
        except Exception:  # an exporter bug must not kill the export thread
            logger.exception("span exporter raised")
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._stats.exported += len(batch)
            if self._failing:
                self._failing = False
                logger.info(
                    "span export recovered (%d spans dropped so far)",
                    self._stats.dropped_export_failed,
                )
            return
        self._stats.dropped_export_failed += len(batch)
        if not self._failing:
            self._failing = True
            logger.warning("span export failed; dropping spans until the collector is reachable")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; ``False`` if it did not finish in time."""
        deadline = time.monotonic() + timeout_millis / 1000
        # A batch may be popped but still in flight, so wait for the worker to go idle too.
        while (self._queue or not self._idle.is_set()) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.002)
        return not self._queue and self._idle.is_set()

    def shutdown(self, timeout_millis: int = 5000) -> None:
        """Flush within ``timeout_millis``, then stop; spans still queued are counted."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._stopping = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self._drain(deadline)
        self._stats.dropped_export_failed += len(self._queue)
        self._queue.clear()
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
        if "timeout_millis" in inspect.signature(self._exporter.shutdown).parameters:
            # The exporter process gets what is left of the bound, not a bound of its own.
            self._exporter.shutdown(timeout_millis=remaining_ms)  # type: ignore[call-arg]
        else:
            self._exporter.shutdown()
