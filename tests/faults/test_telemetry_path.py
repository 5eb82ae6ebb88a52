"""The collector goes away: requests do not notice, memory stays bounded, losses are
counted on ``/health``, and export resumes by itself when the collector is back.

The in-test OTLP receiver plays the collector; stopping it and listening again on
the same port is what a collector restart looks like to the services.
"""

from __future__ import annotations

import uuid

import httpx
from faulttools import (
    Chain,
    ChainFactory,
    Figures,
    median,
    percentile,
    rss_mib,
    timed_gets,
)

from support.otlp import OtlpReceiver
from support.traces import build_tree, poll_until, trace_id_of
from tools.ports import free_ports

SERVICES = ("gateway", "users", "db")
#: Spans one ``GET /api/users/{id}`` ends in each service.
SPANS_PER_READ = {"gateway": 2, "users": 2, "db": 3}


def _create_user(chain: Chain) -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    answer = httpx.post(f"{chain.url()}/api/users", json={"name": "Ada", "email": email})
    assert answer.status_code == 201, answer.text
    return f"{chain.url()}{answer.headers['location']}"


def _spans_ended(chain: Chain, name: str) -> int:
    """Every span the service ended: exported, dropped (either way) or still queued."""
    return sum(chain.span_stats(name).values())


def _assert_complete(receiver: OtlpReceiver, url: str, timeout: float = 30) -> None:
    """One request sent now reaches the receiver as a complete 7-span trace."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    trace_id = trace_id_of(answer.headers["traceparent"])
    spans = poll_until(
        lambda: receiver.spans(trace_id),
        lambda got: len(got) >= 7,
        timeout=timeout,
        what=f"7 spans of {trace_id}",
    )
    assert len(spans) == 7
    build_tree(spans)  # one root, no orphans


def test_collector_unreachable_at_start_up_then_back(
    make_chain: ChainFactory, figures: Figures
) -> None:
    cap = 64
    port = free_ports(1)[0]  # nothing listens here until the receiver starts below
    chain = make_chain(f"http://127.0.0.1:{port}", {"OTEL_BSP_MAX_QUEUE_SIZE": str(cap)})
    url = _create_user(chain)
    rss_before = rss_mib(chain.pid("gateway"))

    requests = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(15):
            timed_gets(client, url, 20)  # every one a 200
            requests += 20
            for name in SERVICES:
                pending = chain.span_stats(name)["pending"]
                assert pending <= cap, f"{name} holds {pending} spans, over the cap {cap}"
    rss_growth = rss_mib(chain.pid("gateway")) - rss_before

    for name in SERVICES:
        # Every span is accounted for once the batch being sent has failed too (it is
        # in no counter while the export call runs): nothing vanishes uncounted.
        ended = (requests + 1) * SPANS_PER_READ[name]  # the create ends as many spans
        poll_until(
            lambda name=name: _spans_ended(chain, name),
            lambda total, ended=ended: total == ended,
            timeout=30,
            what=f"{name}: {ended} spans counted",
        )
        stats = chain.span_stats(name)
        assert stats["exported"] == 0, name
        assert stats["dropped_queue_full"] > 0, (name, stats)
        assert stats["dropped_export_failed"] > 0, (name, stats)
    assert rss_growth < 20, f"gateway grew {rss_growth:.1f} MiB with the collector down"

    with OtlpReceiver(port) as receiver:
        _assert_complete(receiver, url)
        for name in SERVICES:
            assert chain.span_stats(name)["exported"] > 0, name
    for name in SERVICES:
        messages = [r["message"] for r in chain.log_records(name)]
        # One line when export starts failing and one when it recovers, not one per batch.
        assert sum(m.startswith("span export failed") for m in messages) == 1, name
        assert sum(m.startswith("span export recovered") for m in messages) == 1, name
    stats = chain.span_stats("gateway")
    figures(
        f"{requests} requests with the collector unreachable: all 200; gateway dropped "
        f"{stats['dropped_queue_full']} (queue full, cap {cap}) + "
        f"{stats['dropped_export_failed']} (export failed); RSS {rss_growth:+.1f} MiB"
    )


def test_collector_stopped_mid_run_costs_no_latency_and_export_resumes(
    make_chain: ChainFactory, receiver: OtlpReceiver, figures: Figures
) -> None:
    chain = make_chain(receiver.endpoint)
    url = _create_user(chain)
    healthy: list[float] = []
    down: list[float] = []
    rss_before = 0.0
    with httpx.Client(timeout=10) as client:
        timed_gets(client, url, 30)  # warm-up: connections, caches
        rss_before = rss_mib(chain.pid("gateway"))
        # Interleaved blocks, so a busy neighbour on the machine hits both alike.
        for _ in range(4):
            healthy += timed_gets(client, url, 50)
            receiver.stop()
            down += timed_gets(client, url, 50)
            receiver.restart()
    rss_growth = rss_mib(chain.pid("gateway")) - rss_before

    ratio = median(down) / median(healthy)
    figures(
        f"latency healthy p50 {median(healthy):.1f} ms p90 {percentile(healthy, 0.9):.1f} ms; "
        f"collector down p50 {median(down):.1f} ms p90 {percentile(down, 0.9):.1f} ms "
        f"({len(healthy)}+{len(down)} requests, p50 ratio {ratio:.2f}); "
        f"gateway RSS {rss_growth:+.1f} MiB"
    )
    assert ratio <= 1.5, f"median latency {ratio:.2f}x with the collector down"
    assert rss_growth < 20

    _assert_complete(receiver, url)
