"""Fuzz the gateway from its own OpenAPI document with schemathesis.

Valid and invalid requests for every operation, a bounded number of each: no answer
may be a 5xx, and every answer must match the document (status code, content type,
headers, body schema); invalid requests must be refused with a 4xx.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import schemathesis
from faulttools import LONG, Chain, Figures
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi import DOCUMENT

# Per operation and mode (4 operations x 2 modes): the default run takes seconds and
# always the same examples; make test-faults draws many more, new ones each time.
EXAMPLES = 300 if LONG else 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_gateway_serves_its_openapi_document(shared_chain: Chain) -> None:
    answer = httpx.get(f"{shared_chain.url()}/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == DOCUMENT
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert documented == {
        ("/api/users", "post"),
        ("/api/users", "get"),
        ("/api/users/{id}", "get"),
        ("/api/users/{id}", "delete"),
    }


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, statuses: Counter[int]) -> None:
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report as found
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=checks, timeout=10)
        statuses[response.status_code] += 1

    run()


def test_fuzzed_requests_get_no_5xx_and_match_the_document(
    shared_chain: Chain, figures: Figures
) -> None:
    base_url = shared_chain.url()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(result.ok(), mode, base_url, statuses)
    took = time.monotonic() - started
    figures(
        f"{statuses.total()} fuzzed requests in {took:.1f} s, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert statuses.total() >= 100
    assert not any(status >= 500 for status in statuses)
