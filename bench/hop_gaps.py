"""Where the time between a CLIENT span and its peer's SERVER span goes, per hop.

``python -m bench.hop_gaps [READS]`` starts the three services on free ports with an
OTLP receiver of its own, sends one create right after start-up, then READS reads
(default 200) one at a time, and prints, per hop, the medians of the four parts of a
call that the CLIENT span's events (``request sent``, ``response headers received``)
separate; plus, for the first trace and over the reads, the largest stretch of a
SERVER span before its first child starts (time no span explains).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from bench.procs import free_port
from tools.run import ServiceGroup, chain

CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
PARTS = (
    "start -> request sent",
    "sent -> peer SERVER start",
    "peer end -> headers",
    "headers -> end",
)


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """Keeps every span it gets, by trace id, with its service's name."""

    def __init__(self) -> None:
        self.traces: dict[bytes, list[tuple[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.traces[span.trace_id].append((service, span))
        return trace_service_pb2.ExportTraceServiceResponse()


def hops(spans: list[tuple[str, Any]]) -> list[tuple[str, list[float]]]:
    """Each HTTP CLIENT span's four parts in µs, labelled ``caller -> peer``."""
    out = []
    for service, span in spans:
        events = {e.name: e.time_unix_nano for e in span.events}
        if span.kind != CLIENT or "request sent" not in events:
            continue
        peer = [(s, c) for s, c in spans if c.parent_span_id == span.span_id]
        if not peer:
            continue
        peer_service, server = peer[0]
        sent, headers = events["request sent"], events["response headers received"]
        parts = [
            sent - span.start_time_unix_nano,
            server.start_time_unix_nano - sent,
            headers - server.end_time_unix_nano,
            span.end_time_unix_nano - headers,
        ]
        out.append((f"{service} -> {peer_service}", [p / 1e3 for p in parts]))
    return out


def uncovered_ms(spans: list[tuple[str, Any]]) -> float:
    """The longest stretch from a span's start to its first child's start, in ms."""
    longest = 0.0
    for _, span in spans:
        starts = [c.start_time_unix_nano for _, c in spans if c.parent_span_id == span.span_id]
        if starts:
            longest = max(longest, (min(starts) - span.start_time_unix_nano) / 1e6)
    return longest


def main(reads: int) -> None:
    receiver = Receiver()
    otlp_port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    server.add_insecure_port(f"127.0.0.1:{otlp_port}")
    server.start()
    work = Path(tempfile.mkdtemp(prefix="hop-gaps-"))
    gateway, users, db = free_port(), free_port(), free_port()
    group = ServiceGroup(
        chain(gateway, users, db),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'users.db'}",
            "LOG_LEVEL": "WARNING",
        },
        log_dir=work,
    )
    group.start(timeout=60)
    url = f"http://127.0.0.1:{gateway}/api/users"
    try:
        with httpx.Client(timeout=10) as client:
            first = client.post(url, json={"name": "Ada", "email": "ada@example.com"})
            ids = [bytes.fromhex(first.headers["traceparent"].split("-")[1])]
            for _ in range(reads):
                answer = client.get(f"{url}/{first.json()['id']}")
                ids.append(bytes.fromhex(answer.headers["traceparent"].split("-")[1]))
        time.sleep(1.0)  # the last batch
    finally:
        group.stop()
        server.stop(0)
    cold = uncovered_ms(receiver.traces[ids[0]])
    print(f"first trace after start-up: longest stretch without a child span {cold:.1f} ms")
    worst = max(uncovered_ms(receiver.traces[i]) for i in ids[1:])
    print(f"over {reads} reads: at most {worst:.1f} ms")
    rows: dict[str, list[list[float]]] = defaultdict(list)
    for trace_id in ids[1:]:
        for hop, parts in hops(receiver.traces[trace_id]):
            rows[hop].append(parts)
    print(f"\nmedian µs per part of a call | {' | '.join(PARTS)}")
    for hop, samples in sorted(rows.items()):
        medians = [statistics.median(s[i] for s in samples) for i in range(4)]
        print(f"{hop} | " + " | ".join(f"{m:.0f}" for m in medians))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
