"""Build the API gateway app."""

from __future__ import annotations

from cello_runner import add_health
from cello_telemetry import App, OpenTelemetryConfig

from . import routes
from .client import UsersClient
from .openapi import add_openapi
from .settings import RECORDED_BAGGAGE, SERVICE_NAME, SESSION_BAGGAGE, SESSION_HEADER, Settings


def create_app(settings: Settings) -> App:
    """The gateway: telemetry, request ids, a users client, the public routes and their OpenAPI."""
    app = App()
    app.enable_request_id()
    # The public edge: a client's traceparent is a link, not the parent, unless the
    # operator says the gateway's callers are trusted.
    app.trust_incoming_trace(settings.trust_incoming_trace)
    # A client names its session in a plain header; from here on it is baggage,
    # recorded on every service's SERVER span.
    app.baggage_from_header(SESSION_HEADER, SESSION_BAGGAGE)
    app.record_baggage(*RECORDED_BAGGAGE)
    # Where spans go and which are kept is the OTEL_* variables' to say.
    app.enable_telemetry(OpenTelemetryConfig(service_name=SERVICE_NAME))
    users = UsersClient(settings.users_url, settings.users_service, settings.users_timeout)

    @app.on_event("startup")
    async def startup() -> None:
        # Cello answers nothing until start-up hooks return, so /health says ready only
        # once the connection to users is open: the first trace has no connection set-up.
        await users.warm_up()

    @app.on_event("shutdown")
    async def shutdown() -> None:
        await users.aclose()

    add_health(app, SERVICE_NAME)
    routes.register(app, users)
    add_openapi(app)
    return app
