"""Build the db proxy app."""

from __future__ import annotations

from cello_runner import add_health
from cello_telemetry import App, OpenTelemetryConfig, instrument_engine

from . import routes
from .database import UserStore, create_engine, prepare_database
from .scenarios import Scenarios
from .settings import RECORDED_BAGGAGE, SERVICE_NAME, Settings


def create_app(settings: Settings) -> App:
    """The db proxy: telemetry, request ids, the schema at start-up, and the routes.

    Raises:
        ConfigError: the database in ``settings`` cannot be reached.
    """
    prepare_database(settings.database_url, settings.database_timeout)
    app = App()
    app.enable_request_id()
    app.record_baggage(*RECORDED_BAGGAGE)
    # Where spans go and which are kept is the OTEL_* variables' to say.
    app.enable_telemetry(OpenTelemetryConfig(service_name=SERVICE_NAME))
    engine = create_engine(settings.database_url, settings.pool_size, settings.database_timeout)
    store = UserStore(engine, settings.database_timeout)

    @app.on_event("startup")
    async def startup() -> None:
        # Cello answers nothing until start-up hooks return, so /health says ready only
        # once every pooled connection is open and the statements are compiled. Both
        # happen before the engine is instrumented, so they make no stray traces (the
        # schema exists already: prepare_database, on an engine of its own).
        await store.warm_up()
        instrument_engine(engine)

    @app.on_event("shutdown")
    async def shutdown() -> None:
        await engine.dispose()

    add_health(
        app,
        SERVICE_NAME,
        ready=store.check_ready,
        demo_scenarios=settings.demo.enabled,
        database=store.pool_status,
    )
    routes.register(app, store, Scenarios(settings.demo))
    return app
