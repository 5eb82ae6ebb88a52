"""Serve one service in the foreground, and stop at once on a configuration error."""

from __future__ import annotations

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
    own access log is off because the telemetry package writes a JSON one.
    """
    if app.telemetry is not None:
        telemetry = app.telemetry
        configure_logging(telemetry.settings.service_name, otlp=telemetry.log_handler())
    app.set_limits(LimitsConfig(max_body_size=MAX_BODY_SIZE))
    app.run(host=host, port=port, workers=1, debug=False, logs=False)
