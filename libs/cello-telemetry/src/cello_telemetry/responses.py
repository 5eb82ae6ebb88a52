"""What the edge answers: a handler's result as a response, a failure as a problem.

Every answer of a traced route leaves through here: :func:`as_response` for what a
handler returns, :func:`known_error` and :func:`refused_body` for what went wrong, and
:func:`decorate` puts the ``traceparent`` and ``X-Request-ID`` headers on all of them.
"""

from __future__ import annotations

import json
from typing import Any, Final

from cello import Response
from cello.guards import GuardError
from opentelemetry import trace

from cello_problem import HTTPError

from .propagation import TRACEPARENT, TraceContextPropagator

REQUEST_ID_HEADER: Final = "X-Request-ID"

# Formats the response's traceparent, whatever OTEL_PROPAGATORS says for outbound calls.
_TRACE_CONTEXT = TraceContextPropagator()


def as_response(result: Any) -> Response:
    """A handler's return value as Cello would answer it: JSON, text or 204."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response.no_content()
    if isinstance(result, str):
        return Response.text(result)
    return Response.json(result, status=200)


def known_error(exc: Exception) -> HTTPError | None:
    """``exc`` as the :class:`HTTPError` it stands for, or ``None`` for a crash.

    A Cello guard's refusal is what its ``GuardError`` says: 401 ``UnauthorizedError``,
    403 ``ForbiddenError``. Its message is shown, unless Cello wrapped a guard that
    crashed (``"Guard error: ..."``): that text is an exception's, not the guard's answer.
    """
    if isinstance(exc, HTTPError):
        return exc
    if isinstance(exc, GuardError):
        crashed = exc.__context__ is not None and not isinstance(exc.__context__, GuardError)
        return HTTPError(exc.status_code, None if crashed else exc.message)
    return None


def refused_body(refusal: Response) -> HTTPError:
    """Cello's own answer to a body that failed ``body=`` validation, as a problem.

    Cello answers ``{"detail": [{"loc", "msg", "type"}]}``; the problem lists the same
    findings as ``errors``, each a ``field`` and a ``message``, like every other 4xx here.
    """
    try:
        detail = json.loads(bytes(refusal.body())).get("detail")
    except (ValueError, AttributeError):
        detail = None
    errors = [
        {"field": ".".join(str(p) for p in item.get("loc") or () if p != "body") or "body",
         "message": str(item.get("msg", "invalid"))}
        for item in detail if isinstance(item, dict)
    ] if isinstance(detail, list) else []  # fmt: skip
    return HTTPError(
        int(refusal.status), "the body is not valid", extra={"errors": errors} if errors else None
    )


def decorate(response: Response, span: trace.Span | None, request_id: str | None) -> None:
    """Put the span's ``traceparent`` and the request id on ``response``."""
    if span is not None:
        carrier: dict[str, str] = {}
        _TRACE_CONTEXT.inject(carrier, trace.set_span_in_context(span))
        if TRACEPARENT in carrier:
            response.set_header(TRACEPARENT, carrier[TRACEPARENT])
    if request_id is not None:
        response.set_header(REQUEST_ID_HEADER, request_id)
