"""Hostile or broken input at the gateway: never a 5xx, always a valid ``traceparent``,
a fresh request id when the client's is unusable, 4xx problem+json for bad bodies and
ids, nothing stored, and nothing injected into response headers or log lines.

httpx refuses CR, LF and other control characters in header values, so those go
through :func:`faulttools.raw_request`, byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from faulttools import TRACEPARENT_RE, Chain, header_lines, raw_request

from support.otlp import OtlpReceiver
from support.traces import poll_until, trace_id_of

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"
#: Every hostile value carries this, so the logs and headers can be searched for it.
MARK = "INJECTED-7f3a"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
#: What Cello's HTTP parser (hyper) prints when it refuses a request.
PARSER_REFUSAL = re.compile(r"Connection error: hyper::Error\([A-Za-z()]+\)")


@pytest.fixture(scope="module")
def gateway(shared_chain: Chain) -> Iterator[str]:
    yield shared_chain.url()
    # After every request of this module: past Cello's start-up banner, each log line
    # is one whole JSON object or the HTTP parser's fixed refusal line, so no input
    # split a line or forged an entry.
    for name in ("gateway", "users", "db"):
        text = shared_chain.log_path(name).read_bytes().decode("utf-8", errors="replace")
        lines = text.splitlines()
        first_json = next(i for i, line in enumerate(lines) if line.startswith("{"))
        for line in lines[first_json:]:
            if not PARSER_REFUSAL.fullmatch(line):
                json.loads(line)


@pytest.fixture(scope="module")
def users(shared_chain: Chain) -> str:
    """users trusts its caller's trace context (the gateway does not): the tests that a
    context is continued despite bad neighbours go to users directly."""
    return shared_chain.url("users")


def _user_count(gateway: str) -> int:
    total: int = httpx.get(f"{gateway}/api/users?limit=1").json()["total"]
    return total


def _assert_traced(answer: httpx.Response) -> str:
    """No 5xx and a valid ``traceparent``; returns its trace id."""
    assert answer.status_code < 500, answer.text
    assert re.fullmatch(TRACEPARENT_RE, answer.headers["traceparent"])
    for name, value in answer.headers.items():
        assert MARK not in name + value, (name, value)
    return trace_id_of(answer.headers["traceparent"])


# -- trace context and baggage -----------------------------------------------------
# At the gateway no traceparent is continued (it is a link on a new trace); users,
# which trusts its callers, shows what a valid, invalid or mangled context does.


@pytest.mark.parametrize("flags", ["00", "01"])
def test_the_gateway_starts_its_own_sampled_trace_whatever_the_client_sends(
    gateway: str, flags: str
) -> None:
    answer = httpx.get(
        f"{gateway}/api/users?limit=1", headers={"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-{flags}"}
    )
    assert answer.status_code == 200
    assert _assert_traced(answer) != TRACE_ID
    assert answer.headers["traceparent"].endswith("-03")


NEW_TRACE = {
    "garbage": "garbage",
    "empty": "",
    "short": "00-0af7651916cd43dd",
    "uppercase hex": VALID.upper(),
    "version ff": f"ff-{TRACE_ID}-{SPAN_ID}-01",
    "zero trace id": f"00-{'0' * 32}-{SPAN_ID}-01",
    "zero span id": f"00-{TRACE_ID}-{'0' * 16}-01",
    "v00 with extra field": f"{VALID}-extra",
    "oversized": f"{VALID}-{'a' * 5000}",
    "spaces": f"00 {TRACE_ID} {SPAN_ID} 01",
    "mark": f"00-{MARK}-{SPAN_ID}-01",
}


@pytest.mark.parametrize("value", NEW_TRACE.values(), ids=NEW_TRACE.keys())
def test_invalid_traceparent_starts_a_new_trace(users: str, value: str) -> None:
    answer = httpx.get(f"{users}/users?limit=1", headers={"traceparent": value})
    assert answer.status_code == 200
    assert _assert_traced(answer) != TRACE_ID


def test_future_version_traceparent_is_continued(users: str) -> None:
    future = f"cc-{TRACE_ID}-{SPAN_ID}-01-what-the-future-holds"
    answer = httpx.get(f"{users}/users?limit=1", headers={"traceparent": future})
    assert answer.status_code == 200
    assert _assert_traced(answer) == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\xe9".encode(),  # non-ASCII
        "00-0af7651916cd43dd8448eb211c80319c-\u0660\u0661ad6b7169203331-01".encode(),
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-\x80\xff",  # not UTF-8
    ],
    ids=["non-ascii flags", "arabic-indic digits", "invalid utf-8"],
)
def test_non_ascii_traceparent_starts_a_new_trace(users: str, value: bytes) -> None:
    answer = httpx.get(f"{users}/users?limit=1", headers={"traceparent": value})
    assert answer.status_code == 200
    assert _assert_traced(answer) != TRACE_ID


BAD_TRACESTATE = {
    "no equals": "vendor",
    "empty members": "a=1,,,,b=2",
    "uppercase key": "Vendor=1",
    "33 members": ",".join(f"k{i}=v" for i in range(33)),
    "oversized": "k=" + "v" * 6000,
    "mark": f"k={MARK}",
}


@pytest.mark.parametrize("value", BAD_TRACESTATE.values(), ids=BAD_TRACESTATE.keys())
def test_bad_tracestate_keeps_the_trace(users: str, value: str) -> None:
    headers = {"traceparent": VALID, "tracestate": value}
    answer = httpx.get(f"{users}/users?limit=1", headers=headers)
    assert answer.status_code == 200
    assert _assert_traced(answer) == TRACE_ID


BAD_BAGGAGE = {
    "no equals": "k",
    "only separators": ";;;,,,=",
    "bad percent": "k=%ZZ%",
    "oversized": "k=" + "v" * 9000,
    "200 entries": ",".join(f"k{i}=v" for i in range(200)),
    "encoded CR LF": f"demo.scenario=x%0D%0AX-Injected:%20{MARK}",
    "mark": f"demo.session={MARK}",
}


@pytest.mark.parametrize("value", BAD_BAGGAGE.values(), ids=BAD_BAGGAGE.keys())
def test_bad_baggage_is_harmless(gateway: str, users: str, value: str) -> None:
    headers = {"traceparent": VALID, "baggage": value}
    answer = httpx.get(f"{users}/users?limit=1", headers=headers)
    assert answer.status_code == 200
    assert _assert_traced(answer) == TRACE_ID
    at_the_edge = httpx.get(f"{gateway}/api/users?limit=1", headers=headers)
    assert at_the_edge.status_code == 200
    assert _assert_traced(at_the_edge) != TRACE_ID


def test_non_ascii_baggage_is_harmless(gateway: str) -> None:
    headers = {"baggage": "k=v\xe9\u4e2d".encode(), "tracestate": "k=\xe9".encode("latin-1")}
    answer = httpx.get(f"{gateway}/api/users?limit=1", headers=headers)
    assert answer.status_code == 200
    _assert_traced(answer)


def test_header_over_the_server_limit_is_refused_and_harmless(gateway: str) -> None:
    """Over Cello's 16 KiB header limit the connection is closed unanswered (no 431)."""
    try:
        answer = httpx.get(f"{gateway}/api/users", headers={"baggage": "k=" + "v" * 20_000})
    except httpx.RemoteProtocolError:
        pass
    else:
        assert 400 <= answer.status_code < 500
    assert httpx.get(f"{gateway}/health").status_code == 200


# -- request ids ---------------------------------------------------------------------

BAD_IDS = {
    "empty": "",
    "5000 chars": "a" * 5000,
    "spaces": "a b c",
    "slash": "a/b",
    "mark": f"{MARK}!",
}


@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_bad_request_id_is_replaced(gateway: str, value: str) -> None:
    answer = httpx.get(f"{gateway}/api/users?limit=1", headers={"x-request-id": value})
    _assert_traced(answer)
    assert GENERATED_ID.fullmatch(answer.headers["x-request-id"])


def test_non_ascii_request_id_is_replaced(gateway: str) -> None:
    answer = httpx.get(
        f"{gateway}/api/users?limit=1", headers={"x-request-id": "\xe9t\xe9".encode()}
    )
    _assert_traced(answer)
    assert GENERATED_ID.fullmatch(answer.headers["x-request-id"])


def test_good_request_id_is_kept(gateway: str) -> None:
    answer = httpx.get(f"{gateway}/api/users?limit=1", headers={"x-request-id": "client-42:a.b_c"})
    assert answer.headers["x-request-id"] == "client-42:a.b_c"


#: A CR, a NUL or another control character inside a value, or an obs-fold continuation
#: line: Cello's HTTP parser closes the connection without an answer.
RAW_REFUSED = {
    "CR in request id": b"X-Request-ID: abc\rX-Injected: " + MARK.encode(),
    "NUL in request id": b"X-Request-ID: a\x00" + MARK.encode(),
    "CR in traceparent": f"traceparent: {VALID}\rX-Injected: {MARK}".encode(),
    "CR in baggage": b"baggage: k=v\rX-Injected: " + MARK.encode(),
    "folded request id": b"X-Request-ID: abc\r\n X-Injected: " + MARK.encode(),
    "control chars": b"X-Request-ID: \x01\x02\x1b[31m" + MARK.encode(),
}
#: A bare LF ends the line: the client itself sent a second header, which is not
#: echoed. Each is answered, with the request id it should get: the client's, or a
#: generated one. Two traceparent headers are one invalid value: a new trace.
RAW_ANSWERED = {
    "LF in request id": (b"X-Request-ID: abc\nX-Injected: " + MARK.encode(), "abc"),
    "LF in session": (b"X-Demo-Session: s1\nX-Injected: " + MARK.encode(), GENERATED_ID.pattern),
    "two traceparents": (
        f"traceparent: {VALID}\r\ntraceparent: {VALID}".encode(),
        GENERATED_ID.pattern,
    ),
}


def _raw_get(chain: Chain, header: bytes) -> tuple[int, bytes]:
    head = b"GET /api/users?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
    return raw_request(chain.services["gateway"].port, head)


@pytest.mark.parametrize("header", RAW_REFUSED.values(), ids=RAW_REFUSED.keys())
def test_raw_control_characters_are_refused_unanswered(
    shared_chain: Chain, gateway: str, header: bytes
) -> None:
    with pytest.raises((ConnectionError, IndexError)):  # IndexError: no status line came
        _raw_get(shared_chain, header)
    assert httpx.get(f"{gateway}/health").status_code == 200


@pytest.mark.parametrize(("header", "request_id"), RAW_ANSWERED.values(), ids=RAW_ANSWERED.keys())
def test_raw_second_headers_are_never_echoed(
    shared_chain: Chain, header: bytes, request_id: str
) -> None:
    status, response = _raw_get(shared_chain, header)
    assert status == 200
    headers = dict(header_lines(response))
    assert "x-injected" not in headers
    assert MARK.encode() not in response
    assert re.fullmatch(TRACEPARENT_RE, headers["traceparent"])
    assert trace_id_of(headers["traceparent"]) != TRACE_ID
    assert re.fullmatch(request_id, headers["x-request-id"]), headers["x-request-id"]


# -- bodies, ids and paging -----------------------------------------------------------

JSON = {"content-type": "application/json"}
BAD_BODIES = {
    "invalid json": (b'{"name": "Ada", ', JSON, 400),
    "not utf-8": (b'{"name": "\xff\xfe", "email": "a@b.io"}', JSON, 400),
    "array": (b'[{"name": "Ada", "email": "ada@example.com"}]', JSON, 400),
    "string": (b'"Ada"', JSON, 400),
    "null": (b"null", JSON, 400),
    "empty": (b"", JSON, 400),
    "missing fields": (b"{}", JSON, 422),
    "missing email": (b'{"name": "Ada"}', JSON, 422),
    "wrong types": (b'{"name": 1, "email": ["a@b.io"]}', JSON, 422),
    "null fields": (b'{"name": null, "email": null}', JSON, 422),
    "unknown field": (b'{"name": "Ada", "email": "ada@example.com", "admin": true}', JSON, 422),
    "control chars in name": (
        b'{"name": "A\\u0000\\r\\nda", "email": "cc@example.com"}',
        JSON,
        422,
    ),
    "name too long": (
        json.dumps({"name": "A" * 101, "email": "x@example.com"}).encode(),
        JSON,
        422,
    ),
    "bad email": (b'{"name": "Ada", "email": "not an address"}', JSON, 422),
    "text/plain": (
        b'{"name": "Ada", "email": "ada@example.com"}',
        {"content-type": "text/plain"},
        415,
    ),
    "no content-type": (b'{"name": "Ada", "email": "ada@example.com"}', {}, 415),
    "over 16 KiB": (
        json.dumps({"name": "A" * 16 * 1024, "email": "big@example.com"}).encode(),
        JSON,
        413,
    ),
}


@pytest.mark.parametrize(("body", "headers", "status"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body_is_a_4xx_problem_and_stores_nothing(
    gateway: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    before = _user_count(gateway)
    answer = httpx.post(f"{gateway}/api/users", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == status
    _assert_traced(answer)
    assert _user_count(gateway) == before


#: JSON that json.loads reads but nothing after it can take back: each class, as sent to
#: every service directly (the gateway, users and db).
UNREADABLE_JSON = {
    "NaN": b'{"name": NaN, "email": "n@b.io"}',
    "Infinity": b'{"name": Infinity, "email": "n@b.io"}',
    "-Infinity": b'{"name": "Ada", "email": -Infinity}',
    "huge exponent": b'{"name": 1e999, "email": "n@b.io"}',
    "huge integer": b'{"name": ' + b"9" * 5000 + b', "email": "n@b.io"}',
    "lone surrogate": b'{"name": "a\\ud800b", "email": "n@b.io"}',
    "surrogate in a member name": b'{"name": "Ada", "email": "n@b.io", "\\udc00": 1}',
    "duplicate member": b'{"name": "Ada", "email": "dup@b.io", "name": "Eve"}',
    "8000 nested [": b"[" * 8000 + b"]" * 8000,
    "2500 nested objects": b'{"a":' * 2500 + b"1" + b"}" * 2500,
    "33 levels": b'{"name": ' + b"[" * 33 + b"]" * 33 + b', "email": "n@b.io"}',
}
#: Well-formed JSON with values the rules (users) or the columns (db) refuse.
UNSTORABLE = {
    "NUL in name": ({"name": "A\x00da", "email": "nul@example.com"}, 422),
    "huge float name": ({"name": 1.7e308, "email": "f@example.com"}, 422),
    "nested name": ({"name": {"first": "Ada"}, "email": "n@example.com"}, 422),
    "255-char email": ({"name": "Ada", "email": "a" * 243 + "@example.com"}, 422),
    "empty name": ({"name": "", "email": "e@example.com"}, 422),
}
SERVICE_PATHS = {"gateway": "/api/users", "users": "/users", "db": "/users"}


@pytest.mark.parametrize("service", SERVICE_PATHS)
@pytest.mark.parametrize("body", UNREADABLE_JSON.values(), ids=UNREADABLE_JSON.keys())
def test_json_nothing_can_send_on_is_a_400_problem_at_every_service(
    shared_chain: Chain, gateway: str, service: str, body: bytes
) -> None:
    before = _user_count(gateway)
    url = f"{shared_chain.url(service)}{SERVICE_PATHS[service]}"
    answer = httpx.post(url, content=body, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 400
    _assert_traced(answer)
    assert _user_count(gateway) == before


@pytest.mark.parametrize("service", SERVICE_PATHS)
@pytest.mark.parametrize(("body", "status"), UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_values_nothing_can_store_are_a_4xx_problem_at_every_service(
    shared_chain: Chain, gateway: str, service: str, body: dict[str, object], status: int
) -> None:
    before = _user_count(gateway)
    answer = httpx.post(f"{shared_chain.url(service)}{SERVICE_PATHS[service]}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    _assert_traced(answer)
    assert _user_count(gateway) == before


def test_body_over_the_server_limit_is_refused(gateway: str) -> None:
    before = _user_count(gateway)
    body = json.dumps({"name": "A" * 2 * 1024 * 1024, "email": "huge@example.com"})
    answer = httpx.post(f"{gateway}/api/users", content=body, headers=JSON)
    assert answer.status_code == 413
    assert _user_count(gateway) == before


@pytest.mark.xfail(
    reason="Cello answers a body over its 1 MiB limit itself: application/json, no traceparent",
    strict=True,
)
def test_body_over_the_server_limit_is_a_traced_problem(gateway: str) -> None:
    body = json.dumps({"name": "A" * 2 * 1024 * 1024, "email": "huge@example.com"})
    answer = httpx.post(f"{gateway}/api/users", content=body, headers=JSON)
    assert answer.headers["content-type"] == "application/problem+json"
    _assert_traced(answer)


# -- requests no route takes ------------------------------------------------------------

UNROUTED = {
    "unknown path": ("GET", "/nope", 404, None),
    "deep unknown path": ("POST", "/a/b/c", 404, None),
    "root": ("GET", "/", 404, None),
    "trailing slash": ("GET", "/api/users/", 404, None),
    "trailing slash after an id": ("DELETE", "/api/users/1/", 404, None),
    "below a route": ("PUT", "/api/users/1/x", 404, None),
    "wrong method on an id": ("PUT", "/api/users/1", 405, "DELETE, GET, HEAD"),
    "wrong method on the list": ("DELETE", "/api/users", 405, "GET, HEAD, POST"),
    "wrong method on the document": ("POST", "/openapi.json", 405, "GET, HEAD"),
}


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"), UNROUTED.values(), ids=UNROUTED.keys()
)
def test_a_request_no_route_takes_is_a_traced_problem(
    shared_receiver: OtlpReceiver,
    gateway: str,
    method: str,
    path: str,
    status: int,
    allow: str | None,
) -> None:
    before = _user_count(gateway)
    answer = httpx.request(method, f"{gateway}{path}", headers={"x-request-id": "r-unrouted"})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == status
    assert answer.headers.get("allow") == allow
    assert answer.headers["x-request-id"] == "r-unrouted"
    trace_id = _assert_traced(answer)
    (span,) = poll_until(
        lambda: shared_receiver.spans(trace_id), bool, timeout=15, what="the SERVER span"
    )
    # No route: the span is named after the method, with no http.route.
    assert (span.kind, span.name, span.attributes["http.status_code"]) == ("SERVER", method, status)
    assert "http.route" not in span.attributes
    assert _user_count(gateway) == before


def test_options_names_the_methods_of_a_path(gateway: str) -> None:
    answer = httpx.options(f"{gateway}/api/users/1")
    assert answer.status_code == 204
    assert answer.headers["allow"] == "DELETE, GET, HEAD"
    _assert_traced(answer)


def test_head_on_a_get_route_is_its_get_without_a_body(gateway: str) -> None:
    get = httpx.get(f"{gateway}/api/users?limit=1")
    head = httpx.head(f"{gateway}/api/users?limit=1", headers={"x-request-id": "r-head"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["x-request-id"] == "r-head"
    _assert_traced(head)
    # /health has no span (an excluded path), but its request id all the same.
    health = httpx.head(f"{gateway}/health")
    assert health.status_code == 200
    assert GENERATED_ID.fullmatch(health.headers["x-request-id"])


@pytest.mark.xfail(
    reason="Cello routes only GET, POST, PUT, PATCH, DELETE, HEAD and OPTIONS; it answers "
    "any other method itself: a 404 in application/json, no traceparent",
    strict=True,
)
def test_a_method_cello_cannot_route_is_a_traced_problem(gateway: str) -> None:
    answer = httpx.request("BREW", f"{gateway}/api/users")
    assert answer.headers["content-type"] == "application/problem+json"
    _assert_traced(answer)


BAD_PATHS = [
    "/api/users/-1",
    "/api/users/0",
    "/api/users/abc",
    "/api/users/1.5",
    "/api/users/1e3",
    "/api/users/%201",
    "/api/users/%00",
    "/api/users/\u0661",
    "/api/users/9223372036854775808",
    "/api/users/99999999999999999999999999",
    "/api/users?limit=0",
    "/api/users?limit=101",
    "/api/users?limit=-1",
    "/api/users?limit=abc",
    "/api/users?limit=1e2",
    "/api/users?limit=99999999999999999999999",
    "/api/users?offset=-1",
    "/api/users?offset=1000001",
    "/api/users?offset=0x10",
]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", path) for path in BAD_PATHS] + [("DELETE", p) for p in BAD_PATHS if "?" not in p],
)
def test_bad_id_or_paging_is_a_400_problem(gateway: str, method: str, path: str) -> None:
    before = _user_count(gateway)
    answer = httpx.request(method, f"{gateway}{path}")
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    _assert_traced(answer)
    assert _user_count(gateway) == before


def test_largest_id_is_a_404_problem(gateway: str) -> None:
    answer = httpx.get(f"{gateway}/api/users/9223372036854775807")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
