"""One error type that carries an HTTP status, and its problem+json rendering.

Code anywhere in a service raises :class:`HTTPError`; the edge turns it into an
``application/problem+json`` response (RFC 9457) with :func:`problem_response`. Handlers
never build error responses by hand, and never put exception text into a response.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from cello import Response

PROBLEM_JSON = "application/problem+json"


class HTTPError(Exception):
    """An error with an HTTP status, raised inside the code and answered at the edge.

    Args:
        status: the HTTP status code of the answer.
        detail: a human-readable explanation for this occurrence (no internals).
        title: short summary; defaults to the status phrase.
        extra: additional problem members, e.g. ``{"errors": [...]}``.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title or _phrase(status)
        self.detail = detail
        self.extra = extra or {}
        super().__init__(f"{status} {self.title}" + (f": {detail}" if detail else ""))

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        problem: dict[str, Any] = {"type": "about:blank", "title": self.title}
        problem["status"] = self.status
        if self.detail:
            problem["detail"] = self.detail
        if instance:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem

    @classmethod
    def from_problem(cls, status: int, body: Any) -> HTTPError:
        """Rebuild an error from a downstream service's problem document.

        Only the documented members are carried over, so a downstream answer can
        never smuggle arbitrary fields through the gateway.
        """
        if not isinstance(body, dict):
            return cls(status)
        detail = body.get("detail")
        errors = body.get("errors")
        return cls(
            status,
            detail if isinstance(detail, str) else None,
            extra={"errors": errors} if isinstance(errors, list) else None,
        )


def problem_response(error: HTTPError, instance: str | None = None) -> Response:
    """Render ``error`` as an ``application/problem+json`` response."""
    body = json.dumps(error.to_problem(instance), separators=(",", ":"))
    return Response(body, status=error.status, content_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
