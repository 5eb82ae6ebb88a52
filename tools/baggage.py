"""The demo's W3C baggage entries, as the tools send them.

The gateway takes ``X-Demo-Session`` into baggage; every service records both
entries on its SERVER span (``baggage.demo.session``, ``baggage.demo.scenario``),
so one tour or one scenario can be found by tag in Jaeger and Zipkin. Each service
names the entries it records in its own ``settings.py``.
"""

from __future__ import annotations

from typing import Final

SESSION_HEADER: Final = "X-Demo-Session"
"""The request header the gateway turns into the ``demo.session`` entry."""

SESSION: Final = "demo.session"
"""Groups the traces of one demo session (say, one ``make demo`` tour)."""

SCENARIO: Final = "demo.scenario"
"""Asks db for a fault scenario (see ``services/db``, ``scenarios.py``)."""

SLOW_DB: Final = "slow-db"
FLAKY_DB: Final = "flaky-db"
N_PLUS_ONE: Final = "n-plus-one"
"""The scenarios db knows when started with ``DEMO_SCENARIOS=1``."""
