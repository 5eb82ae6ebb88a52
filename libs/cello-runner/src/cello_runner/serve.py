"""Serve one service in the foreground, and stop at once on a configuration error."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cello import LimitsConfig

from cello_settings import ConfigError
from cello_telemetry import App, TelemetryConfigError

from .logs import configure_logging

#: Cello refuses a body over this before buffering it at all; the services' own readers
#: (``cello_problem.read_json_object``) answer a smaller limit with a 413 problem.
MAX_BODY_SIZE = 1024 * 1024


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """End the process with exit status 2 and a one-line message on a bad setting.

    Wrap reading the settings and building the app in it: a service with a bad
    value stops before anything listens on the port, and the message names the
    variable (no traceback to read through).
    """
    try:
        yield
    except (ConfigError, TelemetryConfigError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(app: App, *, host: str, port: int) -> None:
    """Install the JSON log lines and the OTLP log handler, then run ``app`` until SIGINT
    or SIGTERM.

    One worker: each service is one process (scale by running more of them). Cello's
    own access log is off because the telemetry package writes a JSON one. When
    ``host:port`` cannot be had (see :func:`refuse_a_taken_port`), the process ends
    with exit status 2 and a one-line message, as on a configuration error.
    """
    refuse_a_taken_port(host, port)
    if app.telemetry is not None:
        telemetry = app.telemetry
        with exit_on_config_error():  # a bad LOG_LEVEL
            configure_logging(telemetry.settings.service_name, otlp=telemetry.log_handler())
    app.set_limits(LimitsConfig(max_body_size=MAX_BODY_SIZE))
    app.run(host=host, port=port, workers=1, debug=False, logs=False)


def refuse_a_taken_port(host: str, port: int) -> None:
    """End the process (exit status 2, one line) if ``host:port`` cannot be bound.

    Cello binds with ``SO_REUSEPORT``, so a second process on a taken port would start
    without a word and take part of the first one's connections. A plain bind first,
    without ``SO_REUSEPORT``, fails while anything listens there. ``SO_REUSEADDR``
    keeps a just-stopped predecessor's closing connections from counting as taken.
    Another process can still take the port between this check and Cello's bind.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:  # socket.gaierror included: a HOST that does not resolve
        reason = (
            "the port is already in use by another process"
            if exc.errno == errno.EADDRINUSE
            else exc.strerror or type(exc).__name__
        )
        print(f"cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
