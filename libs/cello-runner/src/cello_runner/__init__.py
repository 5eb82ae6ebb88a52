"""Start-up for a traced Cello service: log lines, ``/health``, the foreground process.

A service's ``__main__.py`` reads its settings, builds its app and serves it::

    with exit_on_config_error():
        settings = Settings.from_env()
        app = create_app(settings)
    serve(app, host=settings.host, port=settings.port)

and its ``create_app`` adds the health endpoint with :func:`add_health`.
"""

from .health import add_health
from .logs import configure_logging
from .serve import exit_on_config_error, serve

__all__ = ["add_health", "configure_logging", "exit_on_config_error", "serve"]
