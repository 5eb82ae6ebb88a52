"""W3C baggage at the edge: request headers that become entries, entries a span records.

Baggage comes from the caller and may hold anything, so a header becomes an entry only
as a short token, and a SERVER span records only the entries a service names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from .attributes import BAGGAGE_PREFIX

# The value is forwarded to every service and recorded on spans: only plain tokens.
_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


class BaggageRules:
    """What an app takes into baggage from headers, and records from it on its spans."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        """Lower-case request header -> the baggage entry it becomes."""
        self.recorded: tuple[str, ...] = ()
        """Entries recorded on the SERVER span as ``baggage.<key>``."""

    def take_headers(self, headers: Mapping[str, str], context: Context) -> Context:
        """``context`` with each configured header that holds a token as its entry.

        An absent or malformed header leaves the caller's baggage as it is.
        """
        for header, key in self.headers.items():
            value = headers.get(header)
            if value is not None and _TOKEN.fullmatch(value):
                context = baggage.set_baggage(key, value, context)
        return context

    def attributes(self, context: Context) -> dict[str, AttributeValue]:
        """The recorded entries present in ``context``, as span attributes."""
        out: dict[str, AttributeValue] = {}
        for key in self.recorded:
            value = baggage.get_baggage(key, context)
            if value is not None:
                out[f"{BAGGAGE_PREFIX}{key}"] = str(value)
        return out
