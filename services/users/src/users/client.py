"""The typed client users uses to reach the db proxy."""

from __future__ import annotations

from typing import Any

from cello_telemetry import TracedClient


class DbClient:
    """db's ``/users`` API as methods; each call is a CLIENT span.

    ``peer_service`` is db's ``service.name`` (``peer.service`` on the span). Errors
    arrive as :class:`cello_problem.HTTPError`: db's own 4xx problem (a 404, a 409
    for a taken e-mail), or a 5xx when it is down, slow or failing (see
    ``TracedClient.call``).
    """

    def __init__(self, base_url: str, peer_service: str, timeout: float) -> None:
        self._http = TracedClient(base_url, peer_service=peer_service, timeout=timeout)

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._http.call("POST", "/users", json=fields)
        return result

    async def get(self, user_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._http.call(
            "GET", "/users/{id}", path_params={"id": user_id}
        )
        return result

    async def list(self, limit: int, offset: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._http.call(
            "GET", "/users", params={"limit": limit, "offset": offset}
        )
        return result

    async def delete(self, user_id: int) -> None:
        await self._http.call("DELETE", "/users/{id}", path_params={"id": user_id})

    async def warm_up(self) -> bool:
        """Open a connection to db (an untraced ``GET /health``); ``False`` if it is not up."""
        return await self._http.warm_up("/health")

    async def aclose(self) -> None:
        await self._http.aclose()
