"""Ask db's demo scenarios for their effect, whatever share of requests they disturb.

``flaky-db`` fails a share ``DEMO_FAILURE_RATE`` of db requests: 0.5 on a stack started
with ``DEMO_SCENARIOS=1 make up``, 1 on the one the e2e fixture starts. A test that
needs a failure asks until it gets one, and holds every other answer to a success.
"""

from __future__ import annotations

import httpx

FLAKY_DB = {"baggage": "demo.scenario=flaky-db"}

#: At the default rate of 0.5, 40 successes in a row happen once in 10**12 tries.
ATTEMPTS = 40


def until_flaky_db_fails(http: httpx.Client, url: str) -> tuple[httpx.Response, int]:
    """GET ``url`` with ``flaky-db`` until db fails it: that 503 and the 200s before it.

    ``url`` must answer 200 when db does not fail it (an existing user, say), so an
    answer that is neither the injected failure nor a success fails the test.
    """
    for succeeded in range(ATTEMPTS):
        response = http.get(url, headers=FLAKY_DB)
        if response.status_code == 503:
            return response, succeeded
        assert response.status_code == 200, response.text
    raise AssertionError(
        f"flaky-db did not fail one of {ATTEMPTS} requests: is DEMO_FAILURE_RATE 0?"
    )
