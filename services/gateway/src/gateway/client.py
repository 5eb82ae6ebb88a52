"""The typed client the gateway uses to reach the users service."""

from __future__ import annotations

from ..user_api import UserApiClient
from ..users.settings import SERVICE_NAME as USERS_SERVICE


def users_client(base_url: str, timeout: float) -> UserApiClient:
    """users' ``/users`` API; each call is a CLIENT span with ``peer.service=user-service``.

    Bodies are passed on as received: users owns the rules and answers 422 itself.
    """
    return UserApiClient(base_url, peer_service=USERS_SERVICE, timeout=timeout)
