"""Span attribute names used by this package.

The server span carries the attribute table of Cello's tracing documentation, which
uses the HTTP semantic-convention names that predate ``http.request.method`` and
friends. Trace UIs and the e2e tests key on these, so they come from the
semantic-conventions package in one place instead of string literals in code.
Attributes of our own share the ``request.`` prefix.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes.http_attributes import (
    HTTP_METHOD,
    HTTP_REQUEST_CONTENT_LENGTH,
    HTTP_RESPONSE_CONTENT_LENGTH,
    HTTP_STATUS_CODE,
    HTTP_URL,
)
from opentelemetry.semconv._incubating.attributes.net_attributes import (
    NET_HOST_NAME,
    NET_PEER_NAME,
    NET_PEER_PORT,
)
from opentelemetry.semconv._incubating.attributes.peer_attributes import PEER_SERVICE
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

REQUEST_ID: Final = "request.id"
"""The request id (``X-Request-ID``) of the request a span belongs to."""

BAGGAGE_PREFIX: Final = "baggage."
"""Prefix of the attributes that record chosen W3C baggage entries."""

__all__ = [
    "BAGGAGE_PREFIX",
    "HTTP_METHOD",
    "HTTP_REQUEST_CONTENT_LENGTH",
    "HTTP_RESPONSE_CONTENT_LENGTH",
    "HTTP_ROUTE",
    "HTTP_STATUS_CODE",
    "HTTP_URL",
    "NET_HOST_NAME",
    "NET_PEER_NAME",
    "NET_PEER_PORT",
    "PEER_SERVICE",
    "REQUEST_ID",
]
