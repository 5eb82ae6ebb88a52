"""Request ids: accept a well-formed incoming ``X-Request-ID`` or make one.

The id lives in a context variable for the duration of the request, so the log
formatter and the traced HTTP client can read it without it being passed around.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar, Token

HEADER = "x-request-id"

# Anything else (empty, too long, spaces, CR/LF, non-ASCII) could break a log line or
# a header downstream, so it is replaced rather than cleaned up.
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def accept_or_generate(incoming: str | None) -> str:
    """``incoming`` when it is 1-128 characters of ``[A-Za-z0-9._:-]``, else a new id."""
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


def current_request_id() -> str | None:
    """The id of the request being handled, or ``None`` outside a request."""
    return _current.get()


def bind(request_id: str) -> Token[str | None]:
    """Make ``request_id`` current; pass the returned token to :func:`unbind`."""
    return _current.set(request_id)


def unbind(token: Token[str | None]) -> None:
    """Restore the request id that was current before :func:`bind`."""
    _current.reset(token)
