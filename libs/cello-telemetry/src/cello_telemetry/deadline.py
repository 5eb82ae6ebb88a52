"""The caller's deadline, carried from service to service in ``X-Request-Deadline``.

The header holds the moment the caller stops waiting, as Unix epoch milliseconds. The
edge reads it into a context variable for the request; :class:`TracedClient` sends the
earlier of that deadline and its own timeout to the next service, and a service refuses
to start work (504) whose caller has already given up.

An absolute time rather than a remaining budget (gRPC's ``grpc-timeout``): a request
that waited in a socket buffer or a paused process still counts that wait, which a
budget measured on arrival cannot see. The price is that the hosts' clocks must agree
to well under a timeout; NTP keeps them within milliseconds.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import Final

from cello_problem import HTTPError

HEADER: Final = "x-request-deadline"

# A deadline further out than this is a client's mistake, not a plan: it is ignored.
_LONGEST: Final = 3600.0

_current: ContextVar[float | None] = ContextVar("request_deadline", default=None)


def accept(incoming: str | None) -> float | None:
    """The deadline in ``incoming`` as epoch seconds, or ``None`` when absent or unreadable.

    Only 1-15 ASCII digits count; anything else, or a deadline more than an hour away, is
    treated as no deadline at all (a deadline only ever shortens the wait).
    """
    if incoming is None or not (0 < len(incoming) <= 15 and incoming.isascii()):
        return None
    if not incoming.isdigit():
        return None
    deadline = int(incoming) / 1000
    return deadline if deadline - time.time() <= _LONGEST else None


def bind(deadline: float | None) -> Token[float | None]:
    """Make ``deadline`` (epoch seconds) current; pass the token to :func:`unbind`."""
    return _current.set(deadline)


def unbind(token: Token[float | None]) -> None:
    """Restore the deadline that was current before :func:`bind`."""
    _current.reset(token)


def current() -> float | None:
    """The current request's deadline in epoch seconds, or ``None``."""
    return _current.get()


def budget(timeout: float) -> float:
    """Seconds left for a wait bounded by ``timeout``: the earlier of it and the deadline.

    Zero or less means the caller has given up already.
    """
    deadline = _current.get()
    if deadline is None:
        return timeout
    return min(timeout, deadline - time.time())


def header_value(seconds: float) -> str:
    """``X-Request-Deadline`` for a wait of ``seconds`` from now."""
    return str(int((time.time() + seconds) * 1000))


def ensure_time_left(detail: str = "the caller gave up: its deadline passed") -> None:
    """Raise a 504 when the current request's deadline has passed.

    Raises:
        HTTPError: 504, so no work starts (or commits) that nobody waits for.
    """
    deadline = _current.get()
    if deadline is not None and time.time() >= deadline:
        raise HTTPError(504, detail)
