"""One route's handler as Cello calls it, with everything the route does inside its span.

Cello applies a route's ``guards=`` and ``body=`` outside the handler it is given: a
refusing guard would answer 500 with no span, and a parsed body would be passed to a
wrapper that takes one argument. So the edge takes both options itself and applies them
inside the SERVER span with Cello's own public functions, in Cello's order: the guards
(``cello.guards.verify_guards``), then the body (``cello.validation.wrap_handler_with_body``,
or without ``body=`` the type-hint validation ``wrap_handler_with_validation`` that Cello
gives every route), then the handler.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cello import Request, Response
from cello.guards import verify_guards
from cello.validation import wrap_handler_with_body, wrap_handler_with_validation

from cello_problem import HTTPError, problem_response

from . import deadline
from .exchange import Edge, Exchange
from .responses import as_response, refused_body

Handler = Callable[..., Any]
Guard = Callable[[Request], Any]


class _Answered:
    """What the handler returned; a bare ``Response`` in its place is Cello's refusal."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _answering(handler: Handler) -> Handler:
    # functools.wraps: Cello's validation reads the handler's signature and type hints
    # through __wrapped__, so the parsed body reaches the parameter it would anyway.
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def answered_async(*args: Any, **kwargs: Any) -> _Answered:
            return _Answered(await handler(*args, **kwargs))

        return answered_async

    @functools.wraps(handler)
    def answered(*args: Any, **kwargs: Any) -> _Answered:
        return _Answered(handler(*args, **kwargs))

    return answered


def _response(outcome: Any) -> Response:
    if isinstance(outcome, _Answered):
        return as_response(outcome.value)
    raise refused_body(outcome)  # Cello's validation answered before the handler ran


def traced_handler(
    edge: Edge,
    route: str,
    handler: Handler,
    *,
    guards: Sequence[Guard] | None = None,
    body: type | None = None,
) -> Callable[[Request], Any]:
    """``handler`` with its guards, body validation and SERVER span, for Cello to call.

    Every answer, a guard's 401/403, a refused body's 400 and a crash's 500 included,
    is made inside the span and carries ``traceparent`` and ``X-Request-ID``.
    """
    answering = _answering(handler)
    inner = (
        wrap_handler_with_body(answering, body)
        if body is not None
        else wrap_handler_with_validation(answering)
    )
    checks = list(guards or ())
    # Name and docstring (Cello's OpenAPI reads them) but not the signature: Cello
    # would otherwise validate this wrapper's parameters a second time.
    keep = functools.wraps(handler, assigned=("__module__", "__name__", "__doc__"), updated=())

    if inspect.iscoroutinefunction(handler):
        inner_async: Callable[[Request], Awaitable[Any]] = inner

        @keep
        async def traced_async(request: Request) -> Response:
            exchange = Exchange(edge, request, route)
            try:
                deadline.ensure_time_left()  # no work for a caller that has given up
                if checks:
                    verify_guards(checks, request)
                response = _response(await inner_async(request))
            except Exception as exc:  # noqa: BLE001 - the edge answers every failure
                return exchange.fail(exc)
            return exchange.finish(response)

        return traced_async

    @keep
    def traced(request: Request) -> Response:
        exchange = Exchange(edge, request, route)
        try:
            deadline.ensure_time_left()
            if checks:
                verify_guards(checks, request)
            response = _response(inner(request))
        except Exception as exc:  # noqa: BLE001 - the edge answers every failure
            return exchange.fail(exc)
        return exchange.finish(response)

    return traced


def unrouted_handler(
    edge: Edge, allowed: Callable[[str], Sequence[str]]
) -> Callable[..., Response]:
    """The answer to a request no route took, for Cello's catch-all routes.

    ``allowed(path)`` names the methods the app's routes serve on ``path``: none is a
    404 problem; otherwise ``OPTIONS`` is a 204 and any other method a 405 problem,
    each with ``Allow``. The SERVER span is named after the method alone and has no
    ``http.route``, as the HTTP conventions say for a request without a route.
    """

    def unrouted(request: Request) -> Response:
        exchange = Exchange(edge, request, None)
        methods = ", ".join(sorted(allowed(request.path)))
        if not methods:
            response = problem_response(HTTPError(404, "no route serves this path"), request.path)
        elif request.method == "OPTIONS":
            response = Response.no_content()
        else:
            error = HTTPError(405, f"this path answers {methods}")
            response = problem_response(error, request.path)
        if methods:
            response.set_header("Allow", methods)
        return exchange.finish(response)

    return unrouted
