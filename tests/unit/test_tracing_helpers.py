"""Baggage from a request header, ``baggage_value`` and ``internal_span``."""

from __future__ import annotations

from typing import Any

import pytest
from cello import Request
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, StatusCode

from cello_telemetry import baggage_value, internal_span

SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def session_app(make_app):
    """An app that takes ``X-Demo-Session`` into baggage and records it; its handler
    reports the baggage it sees and the headers a downstream call would carry."""
    traced = make_app()
    traced.app.baggage_from_header("X-Demo-Session", "demo.session")
    traced.app.record_baggage("demo.session")
    seen: dict[str, Any] = {}

    @traced.app.get("/probe")
    def probe(request: Request) -> dict[str, str]:
        seen["value"] = baggage_value("demo.session")
        outgoing: dict[str, str] = {}
        propagate.inject(outgoing)
        seen["outgoing"] = outgoing.get("baggage")
        return {}

    def call(headers: dict[str, str]) -> dict[str, Any]:
        seen.clear()
        traced.exporter.clear()
        traced.call("GET", "/probe", Request("GET", "/probe", headers=headers))
        (span,) = traced.spans()
        seen["attribute"] = (span.attributes or {}).get("baggage.demo.session")
        return dict(seen)

    return call


def test_header_becomes_baggage_for_the_handler_the_span_and_downstream(session_app) -> None:
    seen = session_app({"x-demo-session": "tour-1a2b"})

    assert seen == {
        "value": "tour-1a2b",
        "outgoing": "demo.session=tour-1a2b",
        "attribute": "tour-1a2b",
    }
    # Nothing of the request's context is left behind.
    assert baggage_value("demo.session") is None


def test_header_wins_over_the_same_entry_in_the_callers_baggage(session_app) -> None:
    seen = session_app(
        {
            "traceparent": SAMPLED_PARENT,
            "baggage": "demo.session=old,tenant=acme",
            "x-demo-session": "new",
        }
    )

    assert seen["value"] == "new"
    assert seen["attribute"] == "new"
    assert sorted(seen["outgoing"].split(",")) == ["demo.session=new", "tenant=acme"]


@pytest.mark.parametrize(
    "value",
    ["", "two words", "a,b=c", "x;prop", "é", "x" * 65, "a\r\nb"],
    ids=["empty", "space", "list", "property", "non-ascii", "too-long", "crlf"],
)
def test_unsafe_header_is_ignored_and_callers_baggage_kept(session_app, value: str) -> None:
    seen = session_app({"baggage": "demo.session=from-caller", "x-demo-session": value})

    assert seen["value"] == "from-caller"
    assert seen["attribute"] == "from-caller"


def test_absent_header_sets_nothing(session_app) -> None:
    assert session_app({}) == {"value": None, "outgoing": None, "attribute": None}


def test_internal_span_is_a_child_of_the_server_span(make_app) -> None:
    traced = make_app()
    provider = traced.app.telemetry.provider

    @traced.app.get("/work")
    async def work(request: Request) -> dict[str, str]:
        with internal_span("demo: step", {"demo.latency_ms": 5}, tracer_provider=provider):
            pass
        return {}

    traced.call("GET", "/work", Request("GET", "/work"))

    inner, server = sorted(traced.spans(), key=lambda span: span.kind != SpanKind.INTERNAL)
    assert (inner.name, inner.kind) == ("demo: step", SpanKind.INTERNAL)
    assert dict(inner.attributes or {}) == {"demo.latency_ms": 5}
    assert inner.parent is not None
    assert server.context is not None
    assert inner.parent.span_id == server.context.span_id
    assert inner.status.status_code == StatusCode.UNSET


def test_internal_span_records_an_escaping_exception_as_error(make_app) -> None:
    traced = make_app()
    provider = traced.app.telemetry.provider

    with (
        pytest.raises(LookupError, match="no such row"),
        internal_span("demo: failing", tracer_provider=provider),
    ):
        raise LookupError("no such row")

    (span,) = traced.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_baggage_value_outside_a_request_is_none() -> None:
    assert baggage_value("demo.scenario") is None
