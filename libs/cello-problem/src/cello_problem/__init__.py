"""One error type that carries an HTTP status, answered as ``application/problem+json``.

Code anywhere in a service raises :class:`HTTPError`; the edge of the service (in this
project ``cello_telemetry.App``) answers it with :func:`problem_response`. The readers in
:mod:`cello_problem.payload` raise it for bad input, so a handler takes the happy path::

    from cello_problem import HTTPError, path_id

    user_id = path_id(request.params)      # 400 unless a positive integer
    raise HTTPError(404, f"user {user_id} does not exist")
"""

from .errors import PROBLEM_JSON, HTTPError, problem_response
from .payload import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_ID,
    loads_strict,
    path_id,
    query_int,
    read_json_object,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_ID",
    "PROBLEM_JSON",
    "HTTPError",
    "loads_strict",
    "path_id",
    "problem_response",
    "query_int",
    "read_json_object",
]
