"""A small traced app with Cello's route options, for tests that go through Cello's dispatch.

``python -m support.edge_app`` (``PORT`` set, ``tests/`` on ``PYTHONPATH``) serves:

- ``GET /guarded`` and ``GET /guarded-sync``: a guard that refuses (403);
- ``GET /private``: Cello's ``Authenticated`` guard, with no user (401);
- ``POST /items``: ``body=Item``, answering the parsed item with 201;
- ``GET /health``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cello import Request, Response
from cello.guards import Authenticated

from cello_runner import add_health, serve
from cello_settings import host, port
from cello_telemetry import App, OpenTelemetryConfig

SERVICE_NAME = "edge-probe"


@dataclass(frozen=True)
class Item:
    """What ``POST /items`` accepts."""

    name: str
    quantity: int

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, int) or self.quantity < 1:
            raise ValueError("quantity must be a positive integer")


def refuse(request: Request) -> bool:
    return False


def create_app() -> App:
    app = App()
    app.enable_request_id()
    app.enable_telemetry(OpenTelemetryConfig(service_name=SERVICE_NAME))
    add_health(app, SERVICE_NAME)

    @app.get("/guarded", guards=[refuse])
    async def guarded(request: Request) -> dict[str, Any]:
        return {"reached": True}

    @app.get("/guarded-sync", guards=[refuse])
    def guarded_sync(request: Request) -> dict[str, Any]:
        return {"reached": True}

    @app.get("/private", guards=[Authenticated()])
    async def private(request: Request) -> dict[str, Any]:
        return {"reached": True}

    @app.post("/items", body=Item)
    async def create_item(request: Request, item: Item) -> Response:
        return Response.json(asdict(item), status=201)

    return app


if __name__ == "__main__":
    serve(create_app(), host=host(), port=port(8000))
