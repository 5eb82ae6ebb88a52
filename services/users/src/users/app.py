"""Build the users service app."""

from __future__ import annotations

from cello_runner import add_health
from cello_telemetry import App, OpenTelemetryConfig

from . import routes
from .client import DbClient
from .settings import RECORDED_BAGGAGE, SERVICE_NAME, Settings


def create_app(settings: Settings) -> App:
    """The users service: telemetry, request ids, a db client and the routes."""
    app = App()
    app.enable_request_id()
    app.record_baggage(*RECORDED_BAGGAGE)
    # Where spans go and which are kept is the OTEL_* variables' to say.
    app.enable_telemetry(OpenTelemetryConfig(service_name=SERVICE_NAME))
    db = DbClient(settings.db_url, settings.db_service, settings.db_timeout)

    @app.on_event("startup")
    async def startup() -> None:
        # Cello answers nothing until start-up hooks return, so /health says ready only
        # once the connection to db is open: the first trace has no connection set-up.
        await db.warm_up()

    @app.on_event("shutdown")
    async def shutdown() -> None:
        await db.aclose()

    add_health(app, SERVICE_NAME)
    routes.register(app, db)
    return app
