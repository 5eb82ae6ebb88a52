"""The SERVER span's attributes, in the HTTP semantic conventions the operator chose.

By default a SERVER span carries the attribute table of Cello's tracing docs, which uses
the HTTP names that predate the stable conventions (``http.method``, ``http.url``,
``net.host.name``...). ``OTEL_SEMCONV_STABILITY_OPT_IN`` moves it the way it moves the
contrib instrumentations (httpx, SQLAlchemy): ``http`` gives the stable names
(``http.request.method``, ``url.path``, ``server.address``...), ``http/dup`` both, and
``http/dup`` wins when both are listed. Every name comes from
``opentelemetry-semantic-conventions``; our own attributes share the ``request.`` prefix.

A query string is the client's, and may carry a token or an e-mail address. So in every
mode ``http.url`` and ``url.query`` keep its parameter names and replace every value
with ``REDACTED``, the form the URL conventions show for sensitive values
(``q=REDACTED&v=REDACTED``); a name that is not a short plain token is redacted too.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode

from opentelemetry.semconv._incubating.attributes import http_attributes as http_old
from opentelemetry.semconv._incubating.attributes.net_attributes import NET_HOST_NAME
from opentelemetry.semconv._incubating.attributes.peer_attributes import PEER_SERVICE
from opentelemetry.semconv.attributes import http_attributes as http
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_QUERY, URL_SCHEME
from opentelemetry.util.types import AttributeValue

REQUEST_ID: Final = "request.id"
"""The request id (``X-Request-ID``) of the request a span belongs to."""

BAGGAGE_PREFIX: Final = "baggage."
"""Prefix of the attributes that record chosen W3C baggage entries."""

REDACTED: Final = "REDACTED"
"""What a span shows in place of a query parameter's value (and of a name unlike a token)."""
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")

__all__ = [
    "BAGGAGE_PREFIX",
    "PEER_SERVICE",
    "REDACTED",
    "REQUEST_ID",
    "HttpSemconv",
    "redact_query",
]


class HttpSemconv(enum.Enum):
    """Which HTTP attribute names a span gets."""

    OLD = "old"
    STABLE = "http"
    DUP = "http/dup"

    @classmethod
    def from_opt_in(cls, value: str) -> HttpSemconv:
        """Read an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value as the contrib instrumentations do."""
        listed = {item.strip() for item in value.split(",")}
        if "http/dup" in listed:
            return cls.DUP
        return cls.STABLE if "http" in listed else cls.OLD

    @property
    def old(self) -> bool:
        return self is not HttpSemconv.STABLE

    @property
    def stable(self) -> bool:
        return self is not HttpSemconv.OLD


def server_request(
    mode: HttpSemconv,
    method: str,
    route: str | None,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> dict[str, AttributeValue]:
    """What is known of a request when its SERVER span starts (``route`` ``None``: no route
    took it)."""
    host = headers.get("host", "")
    name, port = _split_host(host)
    out: dict[str, AttributeValue] = {http.HTTP_ROUTE: route} if route else {}
    length = headers.get("content-length")
    size = int(length) if length is not None and length.isdigit() else None
    redacted = redact_query(query)
    if mode.old:
        out[http_old.HTTP_METHOD] = method
        out[http_old.HTTP_URL] = f"http://{host}{path}" + (f"?{redacted}" if redacted else "")
        out[NET_HOST_NAME] = name
        if size is not None:
            out[http_old.HTTP_REQUEST_CONTENT_LENGTH] = size
    if mode.stable:
        out[http.HTTP_REQUEST_METHOD] = method
        out[URL_SCHEME] = "http"
        out[URL_PATH] = path
        if redacted:
            out[URL_QUERY] = redacted
        out[SERVER_ADDRESS] = name
        if port is not None:
            out[SERVER_PORT] = port
        if size is not None:
            out[http_old.HTTP_REQUEST_BODY_SIZE] = size
    return out


def redact_query(query: Mapping[str, str]) -> str:
    """``query`` as a span may show it: each name kept if a plain token, no value at all.

    The names are sorted: Cello does not keep their order, and a span should not differ
    from another only by it.
    """
    names = {name if _PLAIN_NAME.fullmatch(name) else REDACTED for name in query}
    return urlencode(dict.fromkeys(sorted(names), REDACTED))


def server_response(mode: HttpSemconv, status: int, length: int) -> dict[str, AttributeValue]:
    """What the SERVER span learns from the response."""
    out: dict[str, AttributeValue] = {}
    if mode.old:
        out[http_old.HTTP_STATUS_CODE] = status
        out[http_old.HTTP_RESPONSE_CONTENT_LENGTH] = length
    if mode.stable:
        out[http.HTTP_RESPONSE_STATUS_CODE] = status
        out[http_old.HTTP_RESPONSE_BODY_SIZE] = length
        if status >= 500:
            out[ERROR_TYPE] = str(status)
    return out


def _split_host(host: str) -> tuple[str, int | None]:
    # "name:port", "[v6]:port" or "[v6]": drop the port, keep an IPv6 literal whole.
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        name, port = host[: end + 1], host[end + 2 :]
    else:
        name, sep, port = host.rpartition(":")
        if not sep:
            name, port = host, ""
    return name, int(port) if port.isdigit() and int(port) < 65536 else None
