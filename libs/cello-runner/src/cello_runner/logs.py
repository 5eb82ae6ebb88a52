"""Install the telemetry package's JSON log lines on the root logger."""

from __future__ import annotations

import logging
import os
import sys

from cello_telemetry import JsonFormatter

_HANDLER_NAME = "cello_runner"


def configure_logging(service_name: str, level: str | None = None) -> None:
    """Send the root logger's output to stderr as JSON lines (idempotent).

    Each line carries ``trace_id``, ``span_id`` and ``request.id`` (see
    :class:`cello_telemetry.JsonFormatter`). ``level`` defaults to ``LOG_LEVEL`` from the
    environment, then ``INFO``.
    """
    # Skip what every LogRecord collects but these lines never show: the caller's
    # file and line (a stack walk), thread, process and task names. The logging
    # HOWTO's "Optimization" section lists exactly these switches.
    logging._srcfile = None  # documented in that section
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # new in 3.12, not in typeshed yet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
