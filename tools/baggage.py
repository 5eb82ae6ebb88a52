"""The W3C baggage entries of the demo, named once for every service and the tour.

The gateway takes ``X-Demo-Session`` into baggage; every service records both
entries on its SERVER span (``baggage.demo.session``, ``baggage.demo.scenario``),
so one tour or one scenario can be found by tag in Jaeger and Zipkin.
"""

from __future__ import annotations

from typing import Final

SESSION_HEADER: Final = "X-Demo-Session"
"""The request header the gateway turns into the ``demo.session`` entry."""

SESSION: Final = "demo.session"
"""Groups the traces of one demo session (say, one ``make demo`` tour)."""

SCENARIO: Final = "demo.scenario"
"""Asks db for a fault scenario (see :mod:`services.db.scenarios`)."""

RECORDED: Final = (SESSION, SCENARIO)
"""The entries every service records on its SERVER span."""
