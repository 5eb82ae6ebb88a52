"""Backend-neutral trace assertions: wait for a trace, then assert its exact tree.

Spans from an OTLP receiver, the Jaeger API or the Zipkin API are normalised to
:class:`Span`, so one set of assertions serves every backend::

    spans = poll_until(lambda: fetch(trace_id), complete=has_spans(6), timeout=10)
    tree = build_tree(spans)
    assert tree.shape() == EXPECTED
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from math import comb
from typing import Any


@dataclass(frozen=True)
class Span:
    """One span, as any backend reports it (ids as lowercase hex)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
    service: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    error: bool = False
    events: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id) of each linked span
    start_us: int = 0  # start, microseconds since the epoch (0 where not known)
    duration_us: int = 0


@dataclass
class Node:
    """A span and its children, ordered by name for stable comparison."""

    span: Span
    children: list[Node] = field(default_factory=list)

    def shape(self) -> tuple[str, str, str, tuple[Any, ...]]:
        """``(service, kind, label, (children...))``: what a tree assertion compares.

        The label is the span name, except for SQL spans, whose names may end in
        the database's file path or name; they are labelled by their first word
        (``INSERT``, ``SELECT``, ``connect``), the same on SQLite and PostgreSQL.
        """
        return (
            self.span.service,
            self.span.kind,
            label(self.span),
            tuple(child.shape() for child in self.children),
        )

    def walk(self) -> Iterable[Node]:
        """This node and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, predicate: Callable[[Span], bool]) -> list[Span]:
        """Every span below (and including) this node that matches ``predicate``."""
        return [node.span for node in self.walk() if predicate(node.span)]


def label(span: Span) -> str:
    """A span's name, with SQL spans cut to their operation (see :meth:`Node.shape`)."""
    return span.name.split(" ", 1)[0] if "db.system" in span.attributes else span.name


class TraceError(AssertionError):
    """The spans do not form one well-linked trace."""


def build_tree(spans: Iterable[Span], *, remote_parent: str | None = None) -> Node:
    """Link ``spans`` into one tree, failing on orphans, duplicates or several roots.

    ``remote_parent`` is the span id of a caller outside the trace data (a client
    that sent its own ``traceparent``); the span under it counts as the root.
    """
    spans = list(spans)
    by_id: dict[str, Node] = {}
    for span in spans:
        if span.span_id in by_id:
            raise TraceError(f"span id {span.span_id} appears twice")
        by_id[span.span_id] = Node(span)
    if len({span.trace_id for span in spans}) != 1:
        raise TraceError(f"expected one trace id, got {sorted({s.trace_id for s in spans})}")
    roots = []
    for node in by_id.values():
        parent_id = node.span.parent_id
        if parent_id is None or parent_id == remote_parent:
            roots.append(node)
        elif parent_id in by_id:
            by_id[parent_id].children.append(node)
        else:
            raise TraceError(f"span {node.span.name!r} has a parent {parent_id} not in the trace")
    if len(roots) != 1:
        raise TraceError(f"expected one root span, got {[r.span.name for r in roots]}")
    for node in by_id.values():
        node.children.sort(key=lambda child: (label(child.span).lower(), child.span.kind))
    return roots[0]


def poll_until[T](
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Call ``fetch`` until ``done(result)`` or the deadline; return the last result.

    Exceptions from ``fetch`` (a backend not answering yet) count as "not done".
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    error: Exception | None = None
    while True:
        try:
            last = fetch()
            if done(last):
                return last
            error = None
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            error = exc
        if time.monotonic() >= deadline:
            detail = f"last error: {error!r}" if error else f"last result: {last!r}"
            raise TimeoutError(f"{what} not reached within {timeout} s; {detail}")
        time.sleep(interval)


def trace_id_of(traceparent: str) -> str:
    """The trace id from a ``traceparent`` header value."""
    return traceparent.split("-")[1]


def span_id_of(traceparent: str) -> str:
    """The parent (span) id from a ``traceparent`` header value."""
    return traceparent.split("-")[2]


def extent_ms(spans: Iterable[Span]) -> float:
    """First start to last end, in ms: how the collector's tail sampling measures a trace."""
    spans = list(spans)
    start = min(span.start_us for span in spans)
    end = max(span.start_us + span.duration_us for span in spans)
    return (end - start) / 1000


def server_spans(tree: Node) -> list[Span]:
    """Every SERVER span of the trace, root first."""
    return tree.find(lambda span: span.kind == "SERVER")


def sql_spans(tree: Node) -> list[Span]:
    """Every span that carries ``db.system`` (the SQLAlchemy instrumentation's)."""
    return tree.find(lambda span: "db.system" in span.attributes)


def binomial_bounds(n: int, p: float, confidence: float) -> tuple[int, int]:
    """The central ``confidence`` interval of Binomial(n, p): the largest ``low`` and the
    smallest ``high`` with P(X < low) and P(X > high) each at most (1 - confidence) / 2."""
    tail = (1 - confidence) / 2
    pmf = [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, below = 0, 0.0
    while below + pmf[low] <= tail:
        below += pmf[low]
        low += 1
    high, above = n, 0.0
    while above + pmf[high] <= tail:
        above += pmf[high]
        high -= 1
    return low, high


def http_client_spans(tree: Node) -> list[Span]:
    """Every CLIENT span that is not SQL: the traced HTTP client's, one per hop."""
    return tree.find(lambda span: span.kind == "CLIENT" and "db.system" not in span.attributes)
