"""RED metrics from spans: the collector's span_metrics connector counts what was sent.

A known mix of requests goes through the gateway; the collector's Prometheus page then
shows, per service and span status, exactly that many SERVER spans, and each service's
duration histogram counts every one of them. ``make demo``'s table (tools.red) is
read from the same page, with the same code.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support.backends import RED_METRICS_URL
from support.chain import DB, GATEWAY, USERS
from support.scenarios import until_flaky_db_fails
from support.traces import poll_until
from tools import red

SERVICES = (GATEWAY, USERS, DB)
COLLECTOR_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector.yaml"
#: How often the span_metrics connector publishes its counts, in seconds.
FLUSH_S = int(re.search(r"metrics_flush_interval: (\d+)s", COLLECTOR_CONFIG.read_text())[1])
READS, NOT_FOUND, FAILURES = 12, 3, 4
UNSET, ERROR = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"


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


def quiet_calls(http: httpx.Client) -> Counter[tuple[str, str]]:
    """The SERVER span counts once they stay the same for longer than a flush interval.

    The spans of requests sent just before (by the tests before this one) may not be
    counted yet; counted after this test's first read, they would pass for its own.
    """
    reads: list[tuple[float, Counter[tuple[str, str]]]] = []

    def read() -> list[tuple[float, Counter[tuple[str, str]]]]:
        reads.append((time.monotonic(), server_calls(http)))
        return reads

    def unchanged(reads: list[tuple[float, Counter[tuple[str, str]]]]) -> bool:
        now, latest = reads[-1]  # counters only grow: equal to an older read, unchanged since
        return any(now - then > FLUSH_S + 1 and counts == latest for then, counts in reads)

    poll_until(read, unchanged, timeout=60, interval=1, what="SERVER span counts at rest")
    return reads[-1][1]


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
        calls_before = quiet_calls(http)
        histogram_before = histogram_counts(http)
        expected = send_mix(gateway_url, http)

        # The connector flushes every FLUSH_S; counters only grow, so wait for the exact sum.
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
