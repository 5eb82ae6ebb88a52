"""Log records that lead to their span, on stderr and over OTLP, installed by the service.

Each JSON line carries ``trace_id``, ``span_id``, ``request.id`` and ``service.name``, so
a log line found by grep opens its trace in Jaeger or Zipkin. Over OTLP the SDK puts the
trace and span id in the record's own fields and ``service.name`` on the resource;
:class:`RequestIdLogProcessor` adds ``request.id``. This package configures no logging: a
service's start-up puts :class:`JsonFormatter` on its handlers and adds
``Telemetry.log_handler()`` beside them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from . import attributes as attr
from . import request_id

# ensure_ascii keeps control characters and non-ASCII escaped, so no input can break a
# line or forge another entry.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)

# Standard LogRecord attributes; anything else a caller passes via ``extra=`` is output.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line with the current trace context."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service_name = service_name
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        # Formatting a datetime is a good part of a line's cost; the part up to the
        # second changes once a second, so it is formatted once a second.
        second = int(created)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second, self._second_text = second, stamp
        return f"{self._second_text}.{int(created % 1 * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service.name": self._service_name,
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = f"{span_context.trace_id:032x}"
            entry["span_id"] = f"{span_context.span_id:016x}"
        rid = request_id.current_request_id()
        if rid is not None:
            entry["request.id"] = rid
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class RequestIdLogProcessor(LogRecordProcessor):
    """Add the current request's ``request.id`` to each OTLP log record.

    Runs where the record is emitted, in the request's own context, before the batch
    processor queues it.
    """

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        rid = request_id.current_request_id()
        attributes = log_record.log_record.attributes
        if rid is not None and attributes is not None:
            attributes[attr.REQUEST_ID] = rid  # type: ignore[index]  # mutable before export

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
