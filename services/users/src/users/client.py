"""The typed client users uses to reach the db proxy."""

from __future__ import annotations

from ..db.settings import SERVICE_NAME as DB_SERVICE
from ..user_api import UserApiClient


def db_client(base_url: str, timeout: float) -> UserApiClient:
    """db's ``/users`` API; each call is a CLIENT span with ``peer.service=db-proxy``."""
    return UserApiClient(base_url, peer_service=DB_SERVICE, timeout=timeout)
