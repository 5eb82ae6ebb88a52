"""The stock SDK pipeline as a user meets it, one fresh process per environment.

Each case runs ``support.probe`` (one request: SQL, INTERNAL, linked and CLIENT spans)
in a child process, because the global provider and the contrib instrumentations'
semantic-convention mode are fixed once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SERVER, CLIENT, SQL = "GET /items/{id}", "GET /things/{id}", "SELECT :memory:"


def probe(rate: float = 1.0, headers: dict[str, str] | None = None, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-m", "support.probe", str(rate), json.dumps(headers or {})],
        cwd=TESTS,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    """The client's transport (``CELLO_HTTP_TRANSPORT``) for a test of what it sends."""
    return str(request.param)


def sampled(traceparent: str) -> bool:
    # New traces also carry the random-trace-id flag (0x02) of Trace Context Level 2.
    return bool(int(traceparent[-2:], 16) & 0x01)


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in result["spans"]}


def test_a_users_processor_on_the_global_provider_sees_every_span() -> None:
    result = probe()

    assert result["provider"] == "opentelemetry.sdk.trace"
    names = {SERVER, CLIENT, SQL, "connect", "work", "linked"}
    starts = [name for event, name in result["seen"] if event == "start"]
    # The CLIENT span starts as the instrumentation names it ("GET") and is renamed
    # after the route template right after; every other span starts under its name.
    assert sorted(starts) == sorted(names - {CLIENT} | {"GET"})
    assert sorted(name for event, name in result["seen"] if event == "end") == sorted(names)
    assert set(by_name(result)) == names


def test_span_links_are_exported() -> None:
    assert by_name(probe())["linked"]["links"] == ["5678"]


def test_span_limits_from_the_environment_hold_on_exported_spans() -> None:
    linked = by_name(probe(OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT="2", OTEL_SPAN_EVENT_COUNT_LIMIT="1"))[
        "linked"
    ]

    assert len(linked["attributes"]) == 2
    assert linked["dropped_attributes"] == 3
    assert linked["events"] == 1


def test_by_default_trace_context_and_baggage_go_downstream(transport: str) -> None:
    headers = {"traceparent": SAMPLED_PARENT, "baggage": "k=v"}
    (sent,) = probe(headers=headers, CELLO_HTTP_TRANSPORT=transport)["sent"]

    assert sent["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert sent["baggage"] == "k=v"


def test_otel_propagators_tracecontext_sends_no_baggage(transport: str) -> None:
    result = probe(
        headers={"traceparent": SAMPLED_PARENT, "baggage": "k=v"},
        OTEL_PROPAGATORS="tracecontext",
        CELLO_HTTP_TRANSPORT=transport,
    )

    (sent,) = result["sent"]
    assert sent["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert "baggage" not in sent


def test_otel_propagators_none_sends_nothing_and_ignores_the_caller(transport: str) -> None:
    result = probe(
        headers={"traceparent": SAMPLED_PARENT},
        OTEL_PROPAGATORS="none",
        CELLO_HTTP_TRANSPORT=transport,
    )

    (sent,) = result["sent"]
    assert "traceparent" not in sent
    assert by_name(result)[SERVER]["trace_id"] != "0af7651916cd43dd8448eb211c80319c"


OLD_SERVER = {"http.method", "http.url", "net.host.name", "http.status_code"}
NEW_SERVER = {"http.request.method", "url.path", "url.scheme", "server.address"}
NEW_SERVER_END = {"http.response.status_code", "server.port"}
OLD_CLIENT = {"http.method", "http.url", "http.status_code"}
NEW_CLIENT = {"http.request.method", "url.full", "http.response.status_code", "server.address"}
OLD_SQL = {"db.system", "db.statement"}
NEW_SQL = {"db.system.name", "db.query.text"}


@pytest.mark.parametrize(
    ("opt_in", "present", "absent"),
    [
        ("", OLD_SERVER | OLD_CLIENT | OLD_SQL, NEW_SERVER | NEW_CLIENT | NEW_SQL),
        (
            "http,database",
            NEW_SERVER | NEW_SERVER_END | NEW_CLIENT | NEW_SQL,
            {"http.method", "http.url", "net.host.name", "http.status_code", "db.statement"},
        ),
        (
            "http/dup,database/dup",
            OLD_SERVER | NEW_SERVER | OLD_CLIENT | NEW_CLIENT | OLD_SQL | NEW_SQL,
            set(),
        ),
    ],
)
def test_one_setting_moves_server_client_and_sql_spans(
    opt_in: str, present: set[str], absent: set[str], transport: str
) -> None:
    spans = by_name(probe(OTEL_SEMCONV_STABILITY_OPT_IN=opt_in, CELLO_HTTP_TRANSPORT=transport))
    names = set(spans[SERVER]["attributes"]) | set(spans[CLIENT]["attributes"])
    names |= set(spans[SQL]["attributes"])

    assert present <= names, present - names
    assert not absent & names, absent & names
    # Ours and the route stay in every mode.
    assert {"http.route", "request.id"} <= set(spans[SERVER]["attributes"])


def test_sampling_zero_exports_nothing_and_still_answers() -> None:
    result = probe(rate=0.0)

    assert result["status"] == 200
    assert result["spans"] == []
    assert not sampled(result["response_headers"]["traceparent"])
    (sent,) = result["sent"]
    assert not sampled(sent["traceparent"])  # the decision travels downstream


def test_sampling_one_exports_every_span() -> None:
    result = probe(rate=1.0)

    assert len(result["spans"]) == 6
    assert sampled(result["response_headers"]["traceparent"])


def test_a_sampled_caller_is_followed_at_sampling_zero() -> None:
    result = probe(rate=0.0, headers={"traceparent": SAMPLED_PARENT})

    assert len(result["spans"]) == 6
    server = by_name(result)[SERVER]
    assert server["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert server["parent"] == "b7ad6b7169203331"


def test_sdk_disabled_makes_no_spans_and_sends_no_context() -> None:
    result = probe(OTEL_SDK_DISABLED="true", headers={"traceparent": SAMPLED_PARENT})

    assert result["status"] == 200
    assert result["spans"] == []
    assert "traceparent" not in result["sent"][0]
