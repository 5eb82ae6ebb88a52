"""Install the telemetry package's JSON log lines, and its OTLP log handler, on the root logger."""

from __future__ import annotations

import logging
import os
import sys

from cello_settings import ConfigError
from cello_telemetry import JsonFormatter

_HANDLER_NAME = "cello_runner"
_OTLP_NAME = "cello_runner.otlp"


def configure_logging(
    service_name: str, level: str | None = None, *, otlp: logging.Handler | None = None
) -> None:
    """Send the root logger's output to stderr as JSON lines, and over OTLP (idempotent).

    Each line carries ``trace_id``, ``span_id`` and ``request.id`` (see
    :class:`cello_telemetry.JsonFormatter`). ``otlp`` (``app.telemetry.log_handler()``)
    goes beside it and sends every record to the collector as well. ``level`` defaults
    to ``LOG_LEVEL`` from the environment, then ``INFO``. httpx's own line per call is
    left out above ``DEBUG``: the CLIENT span and the callee's access line say it.

    Raises:
        ConfigError: for a level that is not one of logging's names; nothing is changed.
    """
    source = "level" if level else "LOG_LEVEL"
    chosen = (level or os.environ.get("LOG_LEVEL") or "INFO").strip().upper()
    if chosen not in logging.getLevelNamesMapping() or chosen == "NOTSET":
        raise ConfigError(f"{source}={chosen!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
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
    root.handlers = [h for h in root.handlers if h.get_name() not in (_HANDLER_NAME, _OTLP_NAME)]
    root.addHandler(handler)
    if otlp is not None:
        otlp.set_name(_OTLP_NAME)
        root.addHandler(otlp)
    root.setLevel(chosen)
    # httpx logs each call at INFO ("HTTP Request: GET <url> ..."), which the CLIENT span and
    # the callee's access line already record: below DEBUG, only its warnings.
    logging.getLogger("httpx").setLevel(logging.NOTSET if chosen == "DEBUG" else logging.WARNING)
