"""Tail sampling on the real collector, Jaeger and Zipkin (``SAMPLING=tail``).

One known mix goes through the gateway, shuffled: plain reads, flaky-db failures and
slow-db reads. After the collector has decided every trace and the backends hold
everything it kept:

- every error trace and every slow trace is in Jaeger and in Zipkin, complete;
- the plain traces kept (other than those slow on their own) number within the
  99.9 % binomial bounds of the configured share;
- every trace is either complete in both backends or in neither: none is kept in part;
- the RED metrics count every request, kept or not.

The policy's numbers (latency threshold, share) are read from deploy/sampling/tail.yaml.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from support.backends import (
    COLLECTOR_METRICS_URL,
    RED_METRICS_URL,
    jaeger_spans,
    lowercase_shape,
    zipkin_spans,
)
from support.chain import DB, FLAKY_DB_TREE, GATEWAY, USERS, expected_tree, span_count
from support.traces import binomial_bounds, build_tree, extent_ms, poll_until, trace_id_of
from tools import red

TAIL_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "sampling" / "tail.yaml"
PLAIN, FAILING, SLOW = 200, 20, 10
CONFIDENCE = 0.999
UNSET, ERROR = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"
DECISIONS = "otelcol_processor_tail_sampling_global_count_traces_sampled"

READ_TREE = expected_tree("GET", "/api/users/{id}", "/users/{id}", sql=("SELECT",))
SLOW_TREE = expected_tree(
    "GET",
    "/api/users/{id}",
    "/users/{id}",
    db_children=(
        (DB, "CLIENT", "connect", ()),
        (DB, "INTERNAL", "demo: injected latency", ()),
        (DB, "CLIENT", "SELECT", ()),
    ),
)
CREATE_TREE = expected_tree("POST", "/api/users", "/users", sql=("INSERT",))
TREES = {"create": CREATE_TREE, "plain": READ_TREE, "failing": FLAKY_DB_TREE, "slow": SLOW_TREE}
SCENARIO = {"plain": None, "failing": "flaky-db", "slow": "slow-db"}
STATUS = {"plain": 200, "failing": 503, "slow": 200}


def policy() -> tuple[float, float]:
    """(latency threshold in ms, share kept of the rest) from deploy/sampling/tail.yaml."""
    text = TAIL_CONFIG.read_text()
    threshold = re.search(r"threshold_ms: (\d+)", text)
    percentage = re.search(r"sampling_percentage: ([\d.]+)", text)
    assert threshold, "the tail policy lost its latency rule"
    assert percentage, "the tail policy lost its probabilistic rule"
    return float(threshold[1]), float(percentage[1]) / 100


def test_binomial_bounds_are_the_exact_central_interval() -> None:
    low, high = binomial_bounds(200, 0.1, CONFIDENCE)
    below = sum(comb(200, k) * 0.1**k * 0.9 ** (200 - k) for k in range(low))
    above = sum(comb(200, k) * 0.1**k * 0.9 ** (200 - k) for k in range(high + 1, 201))
    assert below <= 0.0005 < below + comb(200, low) * 0.1**low * 0.9 ** (200 - low)
    assert above <= 0.0005
    assert (low, high) == (8, 35)


def collector_metrics(http: httpx.Client) -> Counter[str]:
    """The collector's own counters this test reads, summed over their labels."""
    totals: Counter[str] = Counter()
    for sample in red.read(COLLECTOR_METRICS_URL, http):
        if sample.name.startswith(DECISIONS):
            totals[f"decided.sampled={sample.labels['sampled']}"] += int(sample.value)
        elif sample.name.startswith("otelcol_receiver_accepted_spans"):
            totals["spans.received"] += int(sample.value)
        elif sample.name.startswith("otelcol_exporter_sent_spans"):
            totals[f"spans.sent.{sample.labels['exporter']}"] += int(sample.value)
    return totals


@dataclass
class Run:
    """What was sent, what the collector decided, and what each backend holds."""

    ids: dict[str, list[str]] = field(default_factory=dict)  # class -> trace ids
    kept: set[str] = field(default_factory=set)  # trace ids found in the backends
    collector: Counter[str] = field(default_factory=Counter)  # deltas over the run
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # RED deltas
    histogram: Counter[str] = field(default_factory=Counter)
    memory_mib: float = 0.0


class Found(NamedTuple):
    """Which of some trace ids each backend holds (any span of them)."""

    jaeger: frozenset[str]
    zipkin: frozenset[str]

    @classmethod
    def of(cls, trace_ids: list[str]) -> Found:
        return cls(
            frozenset(trace_id for trace_id in trace_ids if jaeger_spans(trace_id)),
            frozenset(trace_id for trace_id in trace_ids if zipkin_spans(trace_id)),
        )

    def __repr__(self) -> str:
        return f"Found({len(self.jaeger)} in Jaeger, {len(self.zipkin)} in Zipkin)"


def _histogram(http: httpx.Client) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in red.read(RED_METRICS_URL, http):
        if sample.name == red.DURATION_COUNT and sample.labels.get("span_kind") == red.SERVER:
            counts[sample.labels["service_name"]] += int(sample.value)
    return counts


@pytest.fixture(scope="module")
def run(tail_sampling_gateway: str) -> Run:
    gateway = tail_sampling_gateway
    result = Run()
    with httpx.Client(timeout=10) as http:
        before = collector_metrics(http)
        calls_before = Counter(red.server_calls(red.read(RED_METRICS_URL, http)))
        histogram_before = _histogram(http)
        created = http.post(
            f"{gateway}/api/users",
            json={"name": "Barbara", "email": f"tail-{uuid.uuid4().hex[:12]}@example.com"},
        )
        assert created.status_code == 201, created.text
        user = created.json()["id"]
        result.ids["create"] = [trace_id_of(created.headers["traceparent"])]

        mix = ["plain"] * PLAIN + ["failing"] * FAILING + ["slow"] * SLOW
        random.Random(13).shuffle(mix)  # interleaved, so no class owns a time window
        result.ids.update({kind: [] for kind in ("plain", "failing", "slow")})
        for kind in mix:
            scenario = SCENARIO[kind]
            headers = {"baggage": f"demo.scenario={scenario}"} if scenario else {}
            response = http.get(f"{gateway}/api/users/{user}", headers=headers)
            assert response.status_code == STATUS[kind], (kind, response.text)
            result.ids[kind].append(trace_id_of(response.headers["traceparent"]))

        every_id = [trace_id for trace_ids in result.ids.values() for trace_id in trace_ids]
        sent = len(every_id)
        # The collector decides each trace decision_wait after its first span; then it
        # has counted a decision for every trace of the mix.
        decided = poll_until(
            lambda: collector_metrics(http) - before,
            lambda delta: delta["decided.sampled=true"] + delta["decided.sampled=false"] >= sent,
            timeout=60,
            interval=1,
            what=f"tail sampling decisions for {sent} traces",
        )
        kept = decided["decided.sampled=true"]
        # Then both backends must come to hold exactly the traces it kept.
        found = poll_until(
            lambda: Found.of(every_id),
            lambda found: len(found.jaeger) == len(found.zipkin) == kept,
            timeout=60,
            interval=1,
            what=f"the {kept} kept traces in Jaeger and Zipkin",
        )
        assert found.jaeger == found.zipkin
        result.kept = set(found.jaeger)
        result.collector = collector_metrics(http) - before
        # span_metrics counted each span as it arrived and flushes every 5 s; the last
        # decision came about 10 s (decision_wait) after the last span: all is flushed.
        result.calls = Counter(red.server_calls(red.read(RED_METRICS_URL, http))) - calls_before
        result.histogram = _histogram(http) - histogram_before
        rss = [s.value for s in red.read(COLLECTOR_METRICS_URL, http)
               if s.name.startswith("otelcol_process_memory_rss")]  # fmt: skip
        result.memory_mib = rss[0] / 2**20 if rss else 0.0
    return result


def _assert_complete(trace_id: str, expected: tuple[Any, ...]) -> None:
    for fetch in (jaeger_spans, zipkin_spans):
        spans = fetch(trace_id)
        assert len(spans) == span_count(expected), (fetch.__name__, trace_id, len(spans))
        shape = build_tree(spans).shape()
        assert shape == (expected if fetch is jaeger_spans else lowercase_shape(expected))


@pytest.mark.parametrize("kind", ["failing", "slow"])
def test_every_error_and_every_slow_trace_is_kept_complete_in_both_backends(
    run: Run, kind: str
) -> None:
    assert len(run.ids[kind]) == {"failing": FAILING, "slow": SLOW}[kind]
    assert set(run.ids[kind]) <= run.kept, f"{kind} traces dropped"
    for trace_id in run.ids[kind]:
        _assert_complete(trace_id, TREES[kind])


def test_plain_traces_kept_lie_within_the_binomial_bounds_of_the_share(run: Run) -> None:
    threshold_ms, share = policy()
    kept = [trace_id for trace_id in run.ids["plain"] if trace_id in run.kept]
    # A plain read slower than the threshold is kept by the latency rule whatever its
    # hash: it tells nothing about the share, so it leaves both counts.
    slow_anyway = [t for t in kept if extent_ms(jaeger_spans(t)) > threshold_ms]
    trials = PLAIN - len(slow_anyway)
    assert trials >= PLAIN // 2, f"{len(slow_anyway)} plain reads slower than {threshold_ms} ms"
    low, high = binomial_bounds(trials, share, CONFIDENCE)
    chosen = len(kept) - len(slow_anyway)
    print(
        f"\ntail sampling: {len(kept)} of {PLAIN} plain traces kept ({len(slow_anyway)} for"
        f" latency), {chosen} of {trials} by the {share:.0%} share, bounds [{low}, {high}];"
        f" collector {dict(run.collector)}, RSS {run.memory_mib:.0f} MiB"
    )
    assert low <= chosen <= high


def test_no_trace_is_kept_in_part(run: Run) -> None:
    """Each trace is complete in both backends, or absent from both."""
    for kind, trace_ids in run.ids.items():
        for trace_id in trace_ids:
            if jaeger_spans(trace_id) or zipkin_spans(trace_id):
                _assert_complete(trace_id, TREES[kind])
            else:
                assert trace_id not in run.kept, trace_id


def test_red_metrics_count_every_request_kept_or_not(run: Run) -> None:
    assert run.calls == {
        **{(service, UNSET): 1 + PLAIN + SLOW for service in (GATEWAY, USERS, DB)},
        **{(service, ERROR): FAILING for service in (GATEWAY, USERS, DB)},
    }
    for service in (GATEWAY, USERS, DB):
        assert run.histogram[service] == 1 + PLAIN + FAILING + SLOW, service
    assert len(run.kept) < PLAIN + FAILING + SLOW  # and yet traces were dropped
