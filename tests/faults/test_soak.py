"""A steady rate through the whole chain for a while: zero errors, every trace complete
(all 7 spans, one root, no orphans) at the receiver, and flat memory in every service.

The default run soaks for 10 s; ``make test-faults`` adds the 60 s soak.
``CELLO_SOAK_RATE`` (default 25 requests/s, what a busy 2-core machine sustains with
room to spare) sets the rate of both.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest
from faulttools import ChainFactory, Figures, long_only, median, percentile, rss_mib

from support.otlp import OtlpReceiver
from support.traces import build_tree, poll_until, trace_id_of

RATE = float(os.environ.get("CELLO_SOAK_RATE", "25"))
WARM_UP = 2.0  # seconds before memory is first measured: imports, pools, caches
#: How much a service's resident memory may grow over the soak after warm-up.
RSS_BOUND_MIB = 15.0
SPANS = 7


@pytest.mark.parametrize("duration", [10, pytest.param(60, marks=long_only)], ids=["10s", "60s"])
def test_soak_has_no_errors_complete_traces_and_flat_memory(
    make_chain: ChainFactory, receiver: OtlpReceiver, figures: Figures, duration: int
) -> None:
    chain = make_chain(receiver.endpoint)
    gateway = chain.url()
    seed = httpx.post(
        f"{gateway}/api/users", json={"name": "Ada", "email": f"{uuid.uuid4().hex}@example.com"}
    )
    assert seed.status_code == 201
    read_url = f"{gateway}{seed.headers['location']}"
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    trace_ids: list[str] = []
    rss: dict[str, list[float]] = {name: [] for name in ("gateway", "users", "db")}

    async def one(client: httpx.AsyncClient, i: int) -> None:
        started = time.perf_counter()
        if i % 5 == 0:  # one create in five, reads otherwise
            body = {"name": "Soak", "email": f"soak-{uuid.uuid4().hex}@example.com"}
            answer = await client.post(f"{gateway}/api/users", json=body)
        else:
            answer = await client.get(read_url)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        trace_ids.append(trace_id_of(answer.headers["traceparent"]))

    async def soak() -> float:
        tasks = []
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as client:
            start = time.monotonic()
            next_sample = start + WARM_UP
            for i in range(int(duration * RATE)):
                # Open loop: each request leaves on schedule, whether or not earlier
                # ones have been answered, so a slow chain shows up as latency.
                await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
                tasks.append(asyncio.create_task(one(client, i)))
                if time.monotonic() >= next_sample:
                    for name in rss:
                        rss[name].append(rss_mib(chain.pid(name)))
                    next_sample += 1.0
            await asyncio.gather(*tasks)
            return time.monotonic() - start

    took = asyncio.run(soak())
    for name in rss:
        rss[name].append(rss_mib(chain.pid(name)))

    assert statuses.keys() <= {200, 201}, statuses
    achieved = len(latencies) / took

    def complete() -> int:
        return sum(len(receiver.spans(t)) == SPANS for t in trace_ids)

    poll_until(complete, lambda n: n == len(trace_ids), timeout=60, what="every trace complete")
    for trace_id in trace_ids:
        build_tree(receiver.spans(trace_id))  # one root, no orphans, no duplicates

    growth = {name: samples[-1] - samples[0] for name, samples in rss.items()}
    figures(
        f"{duration} s soak at {RATE:g}/s ({achieved:.1f}/s achieved): {len(latencies)} "
        f"requests {dict(sorted(statuses.items()))}, latency p50 {median(latencies):.1f} ms "
        f"p99 {percentile(latencies, 0.99):.1f} ms; {len(trace_ids)} traces complete; RSS "
        + ", ".join(
            f"{name} {rss[name][0]:.1f}->{rss[name][-1]:.1f} MiB (max {max(rss[name]):.1f})"
            for name in rss
        )
    )
    assert achieved >= RATE * 0.8, f"the chain kept up with only {achieved:.1f}/s"
    for name, grew in growth.items():
        assert grew < RSS_BOUND_MIB, f"{name} grew {grew:.1f} MiB"
