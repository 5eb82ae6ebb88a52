"""Reading request input strictly: JSON bodies, ids and paging values.

Every function raises :class:`~cello_problem.HTTPError` with a 4xx status
on bad input, so a handler can take the happy path and bad input never reaches the
database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cello import Request

from .errors import HTTPError

# Ids are SQLite INTEGER PRIMARY KEYs: positive and within a signed 64-bit integer.
MAX_ID = 2**63 - 1
# JSON bodies here are a name and an e-mail address; 16 KiB leaves ample room and keeps
# a hostile client from making us parse megabytes.
MAX_BODY_BYTES = 16 * 1024
_DIGITS = re.compile(r"[0-9]{1,19}")


def read_json_object(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request body as a JSON object whose keys are all in ``allowed``.

    Raises:
        HTTPError: 415 when the body is not declared as JSON, 413 when it is over
            ``MAX_BODY_BYTES``, 400 when it is not valid UTF-8 JSON or not an object,
            422 when it has unknown members.
    """
    content_type = (request.content_type() or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPError(415, "send the body as application/json")
    body = bytes(request.body())
    if len(body) > MAX_BODY_BYTES:
        raise HTTPError(413, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise HTTPError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise HTTPError(
            422,
            "unknown members in the body",
            extra={"errors": [{"field": name, "message": "not allowed"} for name in unknown]},
        )
    return data


def path_id(params: Mapping[str, str], name: str = "id") -> int:
    """A positive integer id from the route parameters, or 400."""
    raw = params.get(name, "")
    if not _DIGITS.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
        raise HTTPError(400, f"{name} must be a positive integer up to {MAX_ID}")
    return int(raw)


def query_int(
    query: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int
) -> int:
    """An integer query parameter within ``[minimum, maximum]``, or 400."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not minimum <= int(raw) <= maximum:
        raise HTTPError(400, f"{name} must be an integer from {minimum} to {maximum}")
    return int(raw)
