"""RED metrics from spans: the collector's span_metrics connector counts what was sent.

A known mix of requests goes through the gateway; the collector's Prometheus page then
shows, per service and span status, exactly that many SERVER spans, and each service's
duration histogram counts every one of them. ``make demo``'s table (tools.red) is
read from the same page, with the same code.
"""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest

from support.backends import RED_METRICS_URL
from support.chain import DB, GATEWAY, USERS
from support.scenarios import until_flaky_db_fails
from support.traces import poll_until
from tools import red

SERVICES = (GATEWAY, USERS, DB)
READS, NOT_FOUND, FAILURES = 12, 3, 4
UNSET, ERROR = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"
#: The SERVER spans of a user listing, at the gateway and at users and db.
LISTING = ("GET /api/users", "GET /users")


def server_calls(http: httpx.Client) -> Counter[tuple[str, str]]:
    """SERVER span counts by (service, status code), as the collector serves them now."""
    return Counter(red.server_calls(red.read(RED_METRICS_URL, http)))


def histogram_counts(http: httpx.Client) -> Counter[str]:
    """The SERVER duration histogram's observation count, by service."""
    counts: Counter[str] = Counter()
    for sample in red.read(RED_METRICS_URL, http):
        if sample.name == red.DURATION_COUNT and sample.labels.get("span_kind") == red.SERVER:
            counts[sample.labels["service_name"]] += int(sample.value)
    return counts


def listings(http: httpx.Client) -> Counter[str]:
    """SERVER spans of the user listing (``GET /api/users``, ``GET /users``), by service."""
    counts: Counter[str] = Counter()
    for sample in red.read(RED_METRICS_URL, http):
        labels = sample.labels
        server = sample.name == red.CALLS and labels.get("span_kind") == red.SERVER
        if server and labels.get("span_name") in LISTING:
            counts[labels["service_name"]] += int(sample.value)
    return counts


def wait_for_earlier_spans(gateway: str, http: httpx.Client) -> None:
    """Return once the page counts every span the services sent before now.

    The connector publishes its counts every few seconds, so the spans of the test just
    before may not be on the page yet: read then, they would pass for this test's. A
    listing, a route the mix does not use, goes through first; each service exports
    its spans in order, so once the listing is counted in all three, so is all they
    sent before it.
    """
    before = listings(http)
    assert http.get(f"{gateway}/api/users?limit=1").status_code == 200
    poll_until(
        lambda: listings(http) - before,
        lambda grew: grew == Counter(dict.fromkeys(SERVICES, 1)),
        timeout=30,
        what="the listing counted by every service",
    )


def send_mix(gateway: str, http: httpx.Client) -> Counter[tuple[str, str]]:
    """One create, READS reads, NOT_FOUND 404s and FAILURES flaky-db 503s (with the reads
    flaky-db let through); returns the SERVER spans they must add, by (service, status)."""
    created = http.post(
        f"{gateway}/api/users",
        json={"name": "Edsger", "email": f"red-{uuid.uuid4().hex[:12]}@example.com"},
    )
    assert created.status_code == 201, created.text
    user = created.json()["id"]
    statuses = Counter({201: 1})
    for _ in range(READS):
        statuses[http.get(f"{gateway}/api/users/{user}").status_code] += 1
    for _ in range(NOT_FOUND):
        statuses[http.get(f"{gateway}/api/users/987654321").status_code] += 1
    assert statuses == {201: 1, 200: READS, 404: NOT_FOUND}
    # flaky-db fails only a share of the requests that ask for it: the ones it let
    # through are reads too.
    spared = 0
    for _ in range(FAILURES):
        spared += until_flaky_db_fails(http, f"{gateway}/api/users/{user}")[1]
    # Every hop answers with the status it passes on: a 404 is no error on a SERVER
    # span (the client's mistake), a 503 is one on all three.
    return Counter(
        {
            **{(service, UNSET): 1 + READS + spared + NOT_FOUND for service in SERVICES},
            **{(service, ERROR): FAILURES for service in SERVICES},
        }
    )


def test_counts_and_histograms_match_the_requests_sent(gateway_url: str) -> None:
    if not httpx.get("http://127.0.0.1:8002/health").json().get("demo_scenarios"):
        pytest.skip("the running stack was started without DEMO_SCENARIOS=1")
    with httpx.Client(timeout=10) as http:
        wait_for_earlier_spans(gateway_url, http)
        calls_before, histogram_before = server_calls(http), histogram_counts(http)
        expected = send_mix(gateway_url, http)

        # The connector flushes every 5 s; counters only grow, so wait for the exact sum.
        calls = poll_until(
            lambda: server_calls(http) - calls_before,
            lambda delta: delta == expected,
            timeout=30,
            what=f"SERVER span counts {dict(expected)}",
        )
        histogram = histogram_counts(http) - histogram_before
        rows = {row.service: row for row in red.red(red.read(RED_METRICS_URL, http))}

    assert calls == expected
    for service in SERVICES:
        requests = expected[(service, UNSET)] + expected[(service, ERROR)]
        assert histogram[service] == requests, service
        assert rows[service].requests >= requests
        assert rows[service].p50_ms <= rows[service].p99_ms
