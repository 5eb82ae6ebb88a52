"""``python -m tools.load`` (``make load``): steady mixed traffic, then a summary.

Sends ``--rate`` requests per second for ``--duration`` seconds through the gateway
(``GATEWAY_URL``, by default the native stack's, deploy/.env; loopback only): 20 % creates,
50 % reads of created users, 20 % lists and 10 % reads of a user that does not exist.
The load is open-loop: requests start on schedule whether or not earlier ones have
answered, as real clients do, so a slow service shows up as latency, not as a
quietly lower rate. At most ``MAX_IN_FLIGHT`` wait at once; beyond that a request
is skipped and counted, which keeps the run bounded. Every request carries
``X-Demo-Session: load-<random>``, so its traces can be found by that tag.

Exits 0 when every answer was the expected one, 1 otherwise or when the gateway
is not up, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

import cello_settings as env
from tools import baggage
from tools.topology import topology

MAX_IN_FLIGHT = 200
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# (kind, weight, expected status)
MIX = (("create", 2, 201), ("read", 5, 200), ("list", 2, 200), ("missing", 1, 404))
EXPECTED = {kind: status for kind, _, status in MIX}
BAR_WIDTH = 30


@dataclass
class Stats:
    """What the run has seen so far."""

    sent: int = 0
    duration: float = 0.0
    skipped: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values()) + self.errors["transport"]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; 0.0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Load:
    """Schedules the requests, sends them and keeps the counts."""

    def __init__(self, http: httpx.AsyncClient, rate: float, duration: float) -> None:
        self.http = http
        self.rate = rate
        self.duration = duration
        self.stats = Stats(duration=duration)
        self.user_ids: list[int] = []
        self.random = random.Random()
        self.session = f"load-{uuid.uuid4().hex[:8]}"

    async def run(self) -> Stats:
        """Send ``rate * duration`` requests on schedule; wait for the last answers."""
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()
        progress = asyncio.create_task(self._progress(loop.time()))
        start = loop.time()
        for n in range(round(self.rate * self.duration)):
            delay = start + n / self.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= MAX_IN_FLIGHT:
                self.stats.skipped += 1
                continue
            task = asyncio.create_task(self._one(self._pick()))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        # Bounded: every request has the client's timeout.
        await asyncio.gather(*in_flight)
        progress.cancel()
        self._draw(loop.time() - start, final=True)
        return self.stats

    def _pick(self) -> str:
        kinds, weights = zip(*((kind, weight) for kind, weight, _ in MIX), strict=True)
        kind = self.random.choices(kinds, weights)[0]
        return "create" if kind == "read" and not self.user_ids else kind

    async def _one(self, kind: str) -> None:
        headers = {baggage.SESSION_HEADER: self.session}
        self.stats.sent += 1
        started = time.perf_counter()
        try:
            if kind == "create":
                email = f"load.{uuid.uuid4().hex[:12]}@example.com"
                body = {"name": "Load Test", "email": email}
                response = await self.http.post("/api/users", json=body, headers=headers)
                if response.status_code == 201:
                    self.user_ids.append(response.json()["id"])
            elif kind == "read":
                user_id = self.random.choice(self.user_ids)
                response = await self.http.get(f"/api/users/{user_id}", headers=headers)
            elif kind == "list":
                response = await self.http.get("/api/users?limit=10", headers=headers)
            else:
                response = await self.http.get("/api/users/987654321", headers=headers)
        except httpx.HTTPError:
            self.stats.errors["transport"] += 1
            return
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.stats.statuses[response.status_code] += 1
        if response.status_code != EXPECTED[kind]:
            self.stats.errors[str(response.status_code)] += 1

    async def _progress(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        interactive = sys.stdout.isatty()
        while True:
            await asyncio.sleep(0.25 if interactive else 5)
            self._draw(loop.time() - start, final=False)

    def _draw(self, elapsed: float, *, final: bool) -> None:
        done = min(1.0, elapsed / self.duration)
        bar = "#" * round(done * BAR_WIDTH) + "-" * (BAR_WIDTH - round(done * BAR_WIDTH))
        errors = sum(self.stats.errors.values())
        line = (
            f"[{bar}] {min(elapsed, self.duration):5.1f}/{self.duration:.0f} s  "
            f"{self.stats.sent} sent  {self.stats.answered} answered  {errors} errors"
        )
        if sys.stdout.isatty():
            print(f"\r{line}", end="\n" if final else "", flush=True)
        elif not final:
            print(line, flush=True)


def summary(stats: Stats, elapsed: float) -> str:
    """The report printed at the end of a run."""
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(stats.statuses.items()))
    errors = sum(stats.errors.values())
    error_detail = ", ".join(f"{kind}: {n}" for kind, n in sorted(stats.errors.items()))
    lat = stats.latencies_ms
    return "\n".join(
        [
            f"requests   {stats.sent} over {stats.duration:g} s "
            f"({stats.sent / stats.duration:.1f}/s), finished after {elapsed:.1f} s"
            + (
                f"; {stats.skipped} skipped ({MAX_IN_FLIGHT} were waiting)" if stats.skipped else ""
            ),
            f"by status  {by_status or 'none'}"
            + (
                "  (404s for a user that does not exist are expected)"
                if 404 in stats.statuses
                else ""
            ),
            f"errors     {errors}" + (f" ({error_detail})" if errors else ""),
            f"latency    p50 {percentile(lat, 50):.1f} ms  p90 {percentile(lat, 90):.1f} ms  "
            f"p99 {percentile(lat, 99):.1f} ms  max {max(lat, default=0.0):.1f} ms",
        ]
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make load", description="Steady mixed traffic through the gateway."
    )
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (20)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (30)")
    args = parser.parse_args(argv)
    if not 0.1 <= args.rate <= 1000:
        parser.error("--rate must be between 0.1 and 1000 requests per second")
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be between 1 and 3600 seconds")
    return args


async def _main(gateway: str, rate: float, duration: float) -> int:
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(base_url=gateway, timeout=10, limits=limits) as http:
        try:
            (await http.get("/health")).raise_for_status()
        except httpx.HTTPError:
            print(f"The gateway does not answer at {gateway}. Start it first: `make run` "
                  "(the services) or `make up` (the whole stack).", file=sys.stderr)  # fmt: skip
            return 1
        load = Load(http, rate, duration)
        print(f"{rate:g} requests/s for {duration:g} s to {gateway} "
              f"(session {load.session}, tag baggage.{baggage.SESSION})")  # fmt: skip
        started = time.monotonic()
        stats = await load.run()
        print(summary(stats, time.monotonic() - started))
        return 1 if stats.errors else 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        gateway = env.env_url("GATEWAY_URL", topology().gateway_url)
    except env.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if urlsplit(gateway).hostname not in LOOPBACK:
        # A load generator pointed at someone else's server is an attack, not a demo.
        print(f"GATEWAY_URL={gateway}: make load only targets this machine (127.0.0.1)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return asyncio.run(_main(gateway, args.rate, args.duration))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
