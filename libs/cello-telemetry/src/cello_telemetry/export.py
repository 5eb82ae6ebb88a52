"""A ``SpanExporter`` wrapper that counts what leaves the process and reports outages once.

The stock ``BatchSpanProcessor`` and OTLP exporter do the work. What they do not give a
service is a count of the spans each export delivered or lost, for ``/health``, and one
line when the collector becomes unreachable and one when it is back (the exporter's own
warnings, TLS and auth errors among them, are logged as well, untouched). This wrapper
adds exactly that, around any exporter, and bounds how long a shutdown keeps exporting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class CountingSpanExporter(SpanExporter):
    """Export through ``exporter``, counting spans exported and failed.

    Args:
        exporter: the exporter that sends (the stock ``OTLPSpanExporter`` in a service).
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self._lock = threading.Lock()
        self.exported = 0
        self.failed = 0
        self._failing_since: float | None = None
        self._lost_in_outage = 0
        self._deadline: float | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._deadline is not None and time.monotonic() > self._deadline:
            result = SpanExportResult.FAILURE  # shutting down and out of time
        else:
            try:
                result = self._exporter.export(spans)
            except Exception:  # an exporter must not raise; if one does, the batch is lost
                logger.exception("span exporter raised")
                result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
                recovered, lost = self._failing_since, self._lost_in_outage
                self._failing_since, self._lost_in_outage = None, 0
            else:
                self.failed += len(spans)
                self._lost_in_outage += len(spans)
                first = self._failing_since is None
                if first:
                    self._failing_since = time.monotonic()
        if result is SpanExportResult.SUCCESS:
            if recovered is not None:
                logger.warning(
                    "span export recovered after %.1f s; %d spans were lost",
                    time.monotonic() - recovered,
                    lost,
                )
        elif first:
            logger.warning("span export failed; spans are dropped until the collector answers")
        return result

    def stop_exporting_after(self, seconds: float) -> None:
        """From ``seconds`` from now, fail every export at once: a shutdown's time is up."""
        self._deadline = time.monotonic() + seconds

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
