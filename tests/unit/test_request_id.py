"""X-Request-ID: accepted when well formed, replaced otherwise, echoed and recorded."""

from __future__ import annotations

import re

import pytest
from cello import Request

from cello_telemetry import request_id

GENERATED = re.compile(r"[0-9a-f]{32}")
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"

VALID = [
    "a",
    "0",
    "req-123",
    "abc.DEF_ghi:jkl-mno",
    "7f3e1c2a-5b6d-4e8f-9a0b-1c2d3e4f5a6b",
    ID_CHARS,
    "x" * 128,
    "-",
    "...",
]
INVALID = [
    "",
    "x" * 129,
    "y" * 5000,
    "abc\r\nX-Injected: 1",
    "abc\n",
    "abc\r",
    "with space",
    " leading",
    "trailing ",
    "tab\there",
    "caf\u00e9",
    "\u0661\u0662\u0663",  # Arabic-Indic digits
    "snow\u2603man",
    "a/b",
    "a;b",
    "a,b",
    "<script>",
    'quote"d',
    "semi=colon",
    "null\x00byte",
]


@pytest.fixture
def echo(make_app):
    traced = make_app()

    @traced.app.get("/echo")
    def handler(request: Request) -> dict[str, str | None]:
        return {"request_id": request_id.current_request_id()}

    return traced


def call(echo, header: str | None):
    headers = {} if header is None else {"x-request-id": header}
    return echo.call("GET", "/echo", Request("GET", "/echo", headers=headers))


@pytest.mark.parametrize("incoming", VALID)
def test_accept_or_generate_keeps_a_well_formed_id(incoming: str) -> None:
    assert request_id.accept_or_generate(incoming) == incoming


@pytest.mark.parametrize("incoming", [*INVALID, None], ids=lambda v: repr(v)[:40])
def test_accept_or_generate_replaces_anything_else(incoming: str | None) -> None:
    generated = request_id.accept_or_generate(incoming)

    assert generated != incoming
    assert GENERATED.fullmatch(generated)


def test_generated_ids_are_unique() -> None:
    assert len({request_id.accept_or_generate(None) for _ in range(1000)}) == 1000


@pytest.mark.parametrize("incoming", VALID)
def test_valid_incoming_id_is_echoed_and_recorded(echo, incoming: str) -> None:
    response = call(echo, incoming)

    assert response.status == 200
    assert response.headers["X-Request-ID"] == incoming
    assert bytes(response.body()) == f'{{"request_id":"{incoming}"}}'.encode()
    (span,) = echo.spans()
    assert span.attributes is not None
    assert span.attributes["request.id"] == incoming


@pytest.mark.parametrize("incoming", INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_incoming_id_is_replaced_everywhere(echo, incoming: str) -> None:
    response = call(echo, incoming)

    assert response.status == 200
    echoed = response.headers["X-Request-ID"]
    assert GENERATED.fullmatch(echoed)
    assert bytes(response.body()) == f'{{"request_id":"{echoed}"}}'.encode()
    (span,) = echo.spans()
    assert span.attributes is not None
    assert span.attributes["request.id"] == echoed


def test_missing_id_is_generated_per_request(echo) -> None:
    first = call(echo, None).headers["X-Request-ID"]
    second = call(echo, None).headers["X-Request-ID"]

    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second


def test_request_id_is_unbound_after_the_request(echo) -> None:
    call(echo, "req-1")

    assert request_id.current_request_id() is None


def test_without_enable_request_id_no_header_and_no_attribute(make_app) -> None:
    traced = make_app(request_ids=False)

    @traced.app.get("/echo")
    def handler(request: Request) -> dict[str, str | None]:
        return {"request_id": request_id.current_request_id()}

    response = traced.call("GET", "/echo", Request("GET", "/echo", headers={"x-request-id": "r1"}))

    assert response.status == 200
    assert "X-Request-ID" not in response.headers
    assert bytes(response.body()) == b'{"request_id":null}'
    (span,) = traced.spans()
    assert span.attributes is not None
    assert "request.id" not in span.attributes


def test_bind_and_unbind_nest() -> None:
    assert request_id.current_request_id() is None
    outer = request_id.bind("outer")
    inner = request_id.bind("inner")
    assert request_id.current_request_id() == "inner"
    request_id.unbind(inner)
    assert request_id.current_request_id() == "outer"
    request_id.unbind(outer)
    assert request_id.current_request_id() is None
