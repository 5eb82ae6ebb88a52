"""Reading request input strictly: JSON bodies, ids and paging values.

Every function raises :class:`~cello_problem.HTTPError` with a 4xx status
on bad input, so a handler can take the happy path and bad input never reaches the
database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from cello import Request

from .errors import HTTPError

# Ids are SQLite INTEGER PRIMARY KEYs: positive and within a signed 64-bit integer.
MAX_ID = 2**63 - 1
# JSON bodies here are a name and an e-mail address; 16 KiB leaves ample room and keeps
# a hostile client from making us parse megabytes.
MAX_BODY_BYTES = 16 * 1024
#: Members and items nest at most this deep; no body here needs more than two levels.
MAX_DEPTH = 32
_DIGITS = re.compile(r"[0-9]{1,19}")
# A lone UTF-16 surrogate: json.loads accepts "\ud800", but no UTF-8 text can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Unreadable(ValueError):
    """The body is JSON that this reader refuses; ``str()`` says why."""


def _no_constant(name: str) -> NoReturn:
    raise _Unreadable(f"the body has {name}, which is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unreadable("the body has a number out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Unreadable("the body has a member twice")
    return obj


def _check_strings_and_depth(data: Any) -> None:
    # Iterative: a walk must not recurse where the parser itself refused to.
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                raise _Unreadable("the body has a lone surrogate, which is not Unicode text")
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _Unreadable(f"the body nests deeper than {MAX_DEPTH} levels")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)


def loads_strict(text: str) -> Any:
    """``text`` as JSON that any JSON encoder and any UTF-8 store can take back.

    Stricter than :func:`json.loads`, in the way of I-JSON (RFC 7493): no ``NaN`` or
    ``Infinity``, no number beyond a double, no member twice in one object, no lone
    surrogate in a string, and at most ``MAX_DEPTH`` levels of nesting.

    Raises:
        ValueError: ``text`` is not such JSON; the message says why (no input quoted).
    """
    try:
        data = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique
        )
    except RecursionError:
        raise _Unreadable(f"the body nests deeper than {MAX_DEPTH} levels") from None
    _check_strings_and_depth(data)
    return data


def read_json_object(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The request body as a JSON object whose keys are all in ``allowed``.

    The JSON is read with :func:`loads_strict`, so whatever it returns can be sent
    on as JSON and stored as UTF-8 text.

    Raises:
        HTTPError: 415 when the body is not declared as JSON, 413 when it is over
            ``MAX_BODY_BYTES``, 400 when it is not valid UTF-8 JSON (as
            :func:`loads_strict` reads it) or not an object, 422 when it has unknown
            members.
    """
    content_type = (request.content_type() or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPError(415, "send the body as application/json")
    body = bytes(request.body())
    if len(body) > MAX_BODY_BYTES:
        raise HTTPError(413, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        data = loads_strict(body.decode("utf-8"))
    except _Unreadable as refused:
        raise HTTPError(400, str(refused)) from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
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
