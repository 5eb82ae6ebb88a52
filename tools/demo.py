"""``python -m tools.demo`` (``make demo``): a guided tour of traces through the running stack.

Sends a scripted series of requests through the gateway (``GATEWAY_URL``, by default
the native stack's, deploy/.env): the everyday ones, two client errors and the three
fault scenarios. For each it prints what it did, the answer, what to look for, and
links to the trace in Jaeger and Zipkin and to its log records in VictoriaLogs, once
Zipkin has all of it. At the end it checks that every trace is in both backends, links
the services' latency graph in VictoriaMetrics, and prints the RED table of the tour's
own requests, once the metrics count them all (``DEMO_METRICS_TIMEOUT``, 75 s).

Every request carries ``X-Demo-Session: tour-<random>``, so the whole tour can be
found by the tag ``baggage.demo.session``. The scenario steps need db started with
``DEMO_SCENARIOS=1``; without it they are ordinary requests, and the tour says so.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

import cello_settings as env
from tools import baggage, red
from tools.backends import Backends
from tools.baggage import FLAKY_DB, N_PLUS_ONE, SLOW_DB
from tools.topology import topology

SERVICES = topology().services
# flaky-db fails half the requests by default: 12 tries all succeeding (0.5**12)
# means the scenario is off, not bad luck.
FLAKY_ATTEMPTS = 12
START_HINT = "DEMO_SCENARIOS=1 make up"
Check = Callable[[list[dict[str, Any]]], bool]
_KNOWN = frozenset(status.value for status in HTTPStatus)


@dataclass
class Step:
    """One request of the tour and what its trace should show."""

    title: str
    method: str
    path: str
    look_for: str
    body: dict[str, str] | None = None
    scenario: str | None = None
    # Whether the scenario visibly did something, judged from Zipkin's spans.
    took_effect: Check | None = None
    # flaky-db: send again until the answer is this status (bounded).
    retry_until: int | None = None
    trace_id: str = field(default="", init=False)


def tour(email: str) -> list[Step]:
    """The steps, in order; ``email`` is the new user's (unique per tour)."""
    user = {"name": "Ada Lovelace", "email": email}
    return [
        Step("Create a user", "POST", "/api/users", "gateway -> users -> db -> INSERT, and "
             "baggage.demo.session on every SERVER span", body=user),
        Step("Read it back", "GET", "/api/users/{id}", "one SELECT under db-proxy's SERVER span"),
        Step("List users", "GET", "/api/users?limit=5", "two SELECTs: the page and the count"),
        Step("Ask for a user that does not exist", "GET", "/api/users/987654321",
             "SERVER spans stay OK (a 404 is the client's mistake), CLIENT spans are ERROR"),
        Step("Create the same e-mail again", "POST", "/api/users",
             "db's INSERT hits the UNIQUE constraint; the 409 travels back unchanged", body=user),
        Step("A slow database (slow-db)", "GET", "/api/users/{id}",
             "'demo: injected latency' inside db-proxy's span: that is where the time went",
             scenario=SLOW_DB, took_effect=lambda spans: _has(spans, "demo: injected latency")),
        Step("N+1 queries (n-plus-one)", "GET", "/api/users?limit=5",
             "one SELECT per user under db-proxy's SERVER span, instead of one for the page",
             scenario=N_PLUS_ONE, took_effect=_one_select_per_user),
        Step("A failing downstream (flaky-db)", "GET", "/api/users/{id}",
             "ERROR from db-proxy's SERVER span up to the gateway's 503; "
             "'demo: injected failure' says why", scenario=FLAKY_DB, retry_until=503),
    ]  # fmt: skip


def _has(spans: list[dict[str, Any]], name: str) -> bool:
    return any(span.get("name", "").lower() == name for span in spans)


def _one_select_per_user(spans: list[dict[str, Any]]) -> bool:
    return any("WHERE users.id" in span.get("tags", {}).get("db.statement", "") for span in spans)


class Tour:
    """Runs the steps against the gateway and reports each trace."""

    def __init__(
        self, gateway: str, backends: Backends, timeout: float, metrics_timeout: float = 75.0
    ) -> None:
        self.gateway = gateway
        self.backends = backends
        self.timeout = timeout
        self.metrics_timeout = metrics_timeout
        self.sent = 0
        self.session = f"tour-{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(timeout=10)
        self.user_id = 0
        self.ignored: list[str] = []
        self.zipkin_up = True

    def send(self, step: Step) -> httpx.Response:
        headers = {baggage.SESSION_HEADER: self.session}
        if step.scenario:
            headers["baggage"] = f"{baggage.SCENARIO}={step.scenario}"
        path = step.path.replace("{id}", str(self.user_id))
        return self.http.request(step.method, self.gateway + path, json=step.body, headers=headers)

    def run(self, number: int, step: Step) -> None:
        print(f"\n{number}. {step.title}")
        attempts: list[int] = []
        for _ in range(FLAKY_ATTEMPTS if step.retry_until else 1):
            started = time.monotonic()
            response = self.send(step)
            self.sent += 1
            elapsed_ms = (time.monotonic() - started) * 1000
            attempts.append(response.status_code)
            if step.retry_until is None or response.status_code == step.retry_until:
                break
        if step.method == "POST" and response.status_code == 201:
            self.user_id = response.json()["id"]
        shown = step.path.replace("{id}", str(self.user_id))
        baggage_note = f"  (baggage {baggage.SCENARIO}={step.scenario})" if step.scenario else ""
        phrase = HTTPStatus(response.status_code).phrase if response.status_code in _KNOWN else ""
        print(f"   {step.method} {shown} -> {response.status_code} {phrase} "
              f"in {elapsed_ms:.0f} ms{baggage_note}")  # fmt: skip
        if len(attempts) > 1:
            print(f"   attempts: {', '.join(map(str, attempts))}")
        if step.retry_until is not None and response.status_code != step.retry_until:
            self.ignored.append(step.title)
        print(f"   look for: {step.look_for}")
        step.trace_id = response.headers["traceparent"].split("-")[1]
        self.report_trace(step)

    def report_trace(self, step: Step) -> None:
        spans: list[dict[str, Any]] = []
        if self.zipkin_up:
            spans = self.backends.wait_in_zipkin(self.http, step.trace_id, SERVICES, self.timeout)
        state = f"ready ({len(spans)} spans in Zipkin)" if spans else "not in Zipkin"
        print(f"   trace {step.trace_id}: {state}")
        print(f"     Jaeger  {self.backends.jaeger_link(step.trace_id)}")
        print(f"     Zipkin  {self.backends.zipkin_link(step.trace_id)}")
        print(f"     Logs    {self.backends.logs_link(step.trace_id)}")
        if spans and step.took_effect is not None and not step.took_effect(spans):
            self.ignored.append(step.title)

    def check_backends(self, steps: list[Step]) -> bool:
        missing = []
        for step in steps:
            in_zipkin = bool(self.backends.zipkin_spans(self.http, step.trace_id))
            if not (in_zipkin and self.backends.in_jaeger(self.http, step.trace_id)):
                missing.append(step.trace_id)
        if missing:
            print(f"\n{len(missing)} of {len(steps)} traces are missing from Jaeger or Zipkin: "
                  f"{', '.join(missing)}")  # fmt: skip
            return False
        print(f"\nAll {len(steps)} traces are in both Jaeger and Zipkin.")
        return True


def main() -> int:
    try:
        gateway = env.env_url("GATEWAY_URL", topology().gateway_url)
        backends = Backends.from_env()
        timeout = env.env_float("DEMO_TRACE_TIMEOUT", 30.0, minimum=1, maximum=300)
        metrics_timeout = env.env_float("DEMO_METRICS_TIMEOUT", 75.0, minimum=1, maximum=600)
        # Read now, so that a bad URL stops the tour before it starts, not after it.
        red.victoriametrics_url()
        red.metrics_url()
    except env.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    runner = Tour(gateway, backends, timeout, metrics_timeout)
    try:
        return _run(runner)
    finally:
        runner.http.close()


def _run(runner: Tour) -> int:
    gateway, backends = runner.gateway, runner.backends
    try:
        runner.http.get(f"{gateway}/health").raise_for_status()
    except httpx.HTTPError:
        print(f"The gateway does not answer at {gateway}. Start the stack first:\n"
              f"    {START_HINT}    # collector, Jaeger, Zipkin and the three services\n"
              "then run `make demo` again.", file=sys.stderr)  # fmt: skip
        return 1
    down = backends.unreachable(runner.http)
    if down:
        runner.zipkin_up = not any(name.startswith("Zipkin") for name in down)
        print(f"{' and '.join(down)} not answering: the requests run, but their trace links "
              f"will not open. `make run` starts only the services; `{START_HINT}` starts "
              "everything.", file=sys.stderr)  # fmt: skip
    before = red.snapshot(runner.http)
    steps = tour(f"ada.{runner.session}@example.com")
    print(f"A tour of {len(steps)} requests through {gateway}.")
    print(f"Session {runner.session}: sent as {baggage.SESSION_HEADER}, recorded on every "
          f"SERVER span as baggage.{baggage.SESSION}.")  # fmt: skip
    try:
        for number, step in enumerate(steps, 1):
            runner.run(number, step)
        complete = not down and runner.check_backends(steps)
    except httpx.HTTPError as exc:
        print(f"\nthe tour stopped: {exc!r}", file=sys.stderr)
        return 1
    tag = f"baggage.{baggage.SESSION}"
    print(f"Every trace of this tour, by the tag {tag}={runner.session}:")
    query = quote(f"{tag}={runner.session}")
    print(f"    Zipkin API  {backends.zipkin_url}/api/v2/traces?annotationQuery={query}")
    query = quote(json.dumps({tag: runner.session}, separators=(",", ":")))
    print(f"    Jaeger API  {backends.jaeger_url}/api/traces?service={SERVICES[0]}&tags={query}")
    if runner.ignored:
        print(f"\nNo visible effect in: {'; '.join(runner.ignored)}. db ignores "
              f"{baggage.SCENARIO} unless started with DEMO_SCENARIOS=1: "
              f"`make down && {START_HINT}`, then `make demo` again.")  # fmt: skip
    print(f"\nLatency of the three services (p99 per service, from their request histograms):\n"
          f"    {backends.latency_link(SERVICES)}\n")  # fmt: skip
    closing_table(runner, before)
    return 0 if complete else 1


def closing_table(runner: Tour, before: red.Snapshot) -> None:
    """The RED table of the tour's own requests: counted from ``before``, read once every
    service's count includes each request the tour sent (or the deadline passed)."""
    expected = dict.fromkeys(SERVICES, runner.sent)
    print(f"Waiting up to {runner.metrics_timeout:.0f} s for the metrics to count the tour's "
          f"{runner.sent} requests ...", flush=True)  # fmt: skip
    found = red.wait_for(
        lambda: red.snapshot(runner.http), before, expected, runner.metrics_timeout
    )
    if found is None:
        print(f"No RED metrics: neither {red.victoriametrics_url()} nor "
              f"{red.metrics_url()} answers.")  # fmt: skip
        return
    source, counts, reached = found
    red.show(source, counts, what=f"the {runner.sent} requests of this tour")
    if not reached:
        print(f"(after {runner.metrics_timeout:.0f} s some requests are still not counted: "
              "under head sampling the span metrics see only the sampled share)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
