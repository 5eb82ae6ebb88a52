"""Read a trace back from Jaeger's and Zipkin's query APIs as :class:`~support.traces.Span`.

With :func:`wait_for_trace` a test follows one request into a real backend::

    tree = wait_for_trace(jaeger_spans, trace_id, spans=7)
    assert tree.shape() == expected
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tools.topology import topology

from .traces import Node, Span, build_tree, poll_until

#: The native stack's backends, where deploy/.env puts them.
JAEGER_URL = topology().jaeger_url
ZIPKIN_URL = topology().zipkin_url
#: The collector's RED metrics (span_metrics connector) and its own metrics (on the
#: collector's default telemetry port, set nowhere), both in the Prometheus text format.
RED_METRICS_URL = topology().red_metrics_url
COLLECTOR_METRICS_URL = "http://127.0.0.1:8888/metrics"

Fetch = Callable[[str], list[Span]]


def jaeger_spans(trace_id: str, base_url: str = JAEGER_URL) -> list[Span]:
    """The spans Jaeger holds for ``trace_id`` (none while it has not stored any)."""
    answer = httpx.get(f"{base_url}/api/traces/{trace_id}", timeout=5)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    data = answer.json().get("data") or []
    spans = []
    for trace in data:
        processes = trace["processes"]
        for raw in trace["spans"]:
            tags = {tag["key"]: tag["value"] for tag in raw.get("tags", [])}
            process = processes[raw["processID"]]
            parents = [r["spanID"] for r in raw.get("references", []) if r["refType"] == "CHILD_OF"]
            spans.append(
                Span(
                    trace_id=raw["traceID"].rjust(32, "0"),
                    span_id=raw["spanID"].rjust(16, "0"),
                    parent_id=parents[0].rjust(16, "0") if parents else None,
                    name=raw["operationName"],
                    kind=str(tags.get("span.kind", "internal")).upper(),
                    service=process["serviceName"],
                    attributes=tags,
                    error=tags.get("error") is True or tags.get("otel.status_code") == "ERROR",
                    events=tuple(_jaeger_event(log) for log in raw.get("logs", [])),
                    start_us=int(raw["startTime"]),
                    duration_us=int(raw["duration"]),
                )
            )
    return spans


def _jaeger_event(log: dict[str, Any]) -> str:
    fields = {field["key"]: field["value"] for field in log.get("fields", [])}
    return str(fields.get("event", ""))


def zipkin_spans(trace_id: str, base_url: str = ZIPKIN_URL) -> list[Span]:
    """The spans Zipkin holds for ``trace_id`` (none while it has not stored any).

    Zipkin keeps tag values as strings and lowercases span names, so compare with
    :func:`lowercase_shape`; ids are the same hex as everywhere else.
    """
    answer = httpx.get(f"{base_url}/api/v2/trace/{trace_id}", timeout=5)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return [
        Span(
            trace_id=raw["traceId"].rjust(32, "0"),
            span_id=raw["id"],
            parent_id=raw.get("parentId"),
            name=raw.get("name", ""),
            kind=raw.get("kind", "INTERNAL"),
            service=raw.get("localEndpoint", {}).get("serviceName", ""),
            attributes=raw.get("tags", {}),
            error="error" in raw.get("tags", {}),
            events=tuple(a.get("value", "") for a in raw.get("annotations", [])),
            start_us=int(raw.get("timestamp", 0)),
            duration_us=int(raw.get("duration", 0)),
        )
        for raw in answer.json()
    ]


def wait_for_trace(
    fetch: Fetch,
    trace_id: str,
    spans: int,
    *,
    timeout: float = 30,
    remote_parent: str | None = None,
) -> Node:
    """Poll ``fetch`` until it returns ``spans`` spans of ``trace_id``; return the tree.

    More spans than expected fail at once: a trace must not grow extra spans.
    """
    got = poll_until(
        lambda: fetch(trace_id),
        lambda found: len(found) >= spans,
        timeout=timeout,
        what=f"{spans} spans of trace {trace_id} from {fetch.__name__}",
    )
    assert len(got) == spans, f"{fetch.__name__}: {len(got)} spans, expected {spans}"
    return build_tree(got, remote_parent=remote_parent)


def lowercase_shape(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """An expected tree shape with span names lowercased, as Zipkin stores them."""
    service, kind, name, children = shape
    return (service, kind, name.lower(), tuple(lowercase_shape(c) for c in children))
