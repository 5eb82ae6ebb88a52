"""Fault scenarios that make traces worth looking at, for demos only.

A request asks for one with the W3C baggage entry ``demo.scenario``, which every
hop forwards; db honours it only when started with ``DEMO_SCENARIOS=1``, so a
production-like start ignores it whatever a client sends.

- ``slow-db``: every db request waits ``DEMO_DB_LATENCY_MS`` in an INTERNAL span
  ``demo: injected latency``;
- ``flaky-db``: a share ``DEMO_FAILURE_RATE`` of db requests fail with a 503 problem,
  raised in an INTERNAL span ``demo: injected failure``;
- ``n-plus-one``: listing users reads the page's ids, then each user with a SELECT
  of its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final

from cello_problem import HTTPError
from cello_settings import env_flag, env_float, env_int
from cello_telemetry import baggage_value, internal_span

SLOW_DB: Final = "slow-db"
FLAKY_DB: Final = "flaky-db"
N_PLUS_ONE: Final = "n-plus-one"
NAMES: Final = (SLOW_DB, FLAKY_DB, N_PLUS_ONE)

BAGGAGE_KEY: Final = "demo.scenario"
"""The W3C baggage entry that asks for a scenario; every hop forwards baggage."""

# Custom span attributes share the demo. prefix.
ATTR_SCENARIO: Final = "demo.scenario"
ATTR_LATENCY_MS: Final = "demo.latency_ms"
ATTR_FAILURE_RATE: Final = "demo.failure_rate"

logger = logging.getLogger(__name__)

SpanFactory = Callable[[str, Mapping[str, str | int | float]], AbstractContextManager[None]]


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """``DEMO_SCENARIOS`` (default off), ``DEMO_DB_LATENCY_MS`` (300) and
    ``DEMO_FAILURE_RATE`` (0.5, the share of db requests ``flaky-db`` fails)."""

    enabled: bool = False
    db_latency_ms: int = 300
    failure_rate: float = 0.5

    @classmethod
    def from_env(cls) -> DemoSettings:
        return cls(
            enabled=env_flag("DEMO_SCENARIOS", False),
            db_latency_ms=env_int("DEMO_DB_LATENCY_MS", 300, minimum=0, maximum=30_000),
            failure_rate=env_float("DEMO_FAILURE_RATE", 0.5, minimum=0.0, maximum=1.0),
        )


class Scenarios:
    """What the current request's ``demo.scenario`` asks db to do, if anything.

    Args:
        settings: the switch and the knobs.
        rng: decides which ``flaky-db`` requests fail (tests pass a seeded one).
        span: opens the span a scenario's effect happens in (tests pass a recorder).
    """

    def __init__(
        self,
        settings: DemoSettings,
        rng: random.Random | None = None,
        span: SpanFactory = internal_span,
    ) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._span = span
        self._told_disabled = False

    def requested(self) -> str | None:
        """The known scenario this request asks for; always ``None`` when switched off."""
        name = baggage_value(BAGGAGE_KEY)
        if name not in NAMES:
            return None
        if not self.settings.enabled:
            if not self._told_disabled:
                # Once per process: enough to explain "nothing happened" without
                # letting a client fill the log.
                logger.info("demo.scenario=%s ignored: start db with DEMO_SCENARIOS=1", name)
                self._told_disabled = True
            return None
        return name

    async def disturb(self) -> None:
        """Inject ``slow-db`` latency or a ``flaky-db`` failure, when asked for.

        Raises:
            HTTPError: 503, for the failing share of ``flaky-db`` requests.
        """
        scenario = self.requested()
        if scenario == SLOW_DB:
            latency = self.settings.db_latency_ms
            attributes: dict[str, str | int | float] = {
                ATTR_SCENARIO: scenario,
                ATTR_LATENCY_MS: latency,
            }
            with self._span("demo: injected latency", attributes):
                await asyncio.sleep(latency / 1000)
        elif scenario == FLAKY_DB and self._rng.random() < self.settings.failure_rate:
            rate = self.settings.failure_rate
            with self._span(
                "demo: injected failure", {ATTR_SCENARIO: scenario, ATTR_FAILURE_RATE: rate}
            ):
                raise HTTPError(503, "injected failure (demo scenario flaky-db)")
