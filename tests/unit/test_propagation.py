"""W3C Trace Context propagation: traceparent/tracestate parsing, extract, inject, round trips.

Cases follow the W3C Trace Context test suite in spirit (w3c/trace-context, test/test.py), with
the project's own rules where they differ or the spec leaves a choice: the first duplicate
tracestate key wins, and tracestate keys use the W3C Trace Context Level 2 key grammar
(( lcalpha / DIGIT ) 0*255( keychar ), "@" allowed anywhere after the first character) even
where OpenTelemetry's own TraceState only accepts the Level 1 simple-key / multi-tenant-key.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context, create_key
from opentelemetry.propagators import textmap
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from cello_telemetry.propagation import (
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    W3CTraceContextPropagator,
    format_traceparent,
    parse_traceparent,
    parse_tracestate,
)

TRACE_HEX = "12345678901234567890123456789012"
SPAN_HEX = "1234567890123456"
TRACE_ID = int(TRACE_HEX, 16)
SPAN_ID = int(SPAN_HEX, 16)
VALID_TP = f"00-{TRACE_HEX}-{SPAN_HEX}-01"

PROPAGATOR = W3CTraceContextPropagator()

# Every character the value grammar allows (0x20-0x7E without "," and "="); it must not end with
# a space, and "~" is the last printable character anyway.
ALL_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
# Every Level 2 keychar.
ALL_KEY_CHARS = string.ascii_lowercase + string.digits + "_-*/@"

Pairs = list[tuple[str, str]]


def tp(
    version: str = "00", trace_hex: str = TRACE_HEX, span_hex: str = SPAN_HEX, flags: str = "01"
) -> str:
    return f"{version}-{trace_hex}-{span_hex}-{flags}"


def members(count: int, start: int = 1) -> str:
    return ",".join(f"bar{i:02d}={i:02d}" for i in range(start, start + count))


def member_pairs(count: int, start: int = 1) -> Pairs:
    return [(f"bar{i:02d}", f"{i:02d}") for i in range(start, start + count)]


def span_context_of(context: Context) -> SpanContext:
    return trace.get_current_span(context).get_span_context()


def context_with(span_context: SpanContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def remote(
    trace_id: int = TRACE_ID,
    span_id: int = SPAN_ID,
    flags: int = 1,
    state: Pairs | TraceState | None = None,
) -> SpanContext:
    return SpanContext(
        trace_id=trace_id,
        span_id=span_id,
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=state if isinstance(state, TraceState) else TraceState(state or []),
    )


class RecordingGetter(textmap.Getter[dict[str, Any]]):
    """A getter that remembers which keys it was asked for and returns values verbatim."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, carrier: dict[str, Any], key: str) -> Any:
        self.asked.append(key)
        return carrier.get(key)

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return list(carrier)


# --------------------------------------------------------------------------------------------
# traceparent parsing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(VALID_TP, (TRACE_ID, SPAN_ID, 1), id="v00-sampled"),
        pytest.param(tp(flags="00"), (TRACE_ID, SPAN_ID, 0), id="v00-not-sampled"),
        pytest.param(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1),
            id="spec-example",
        ),
        pytest.param(tp(flags="02"), (TRACE_ID, SPAN_ID, 2), id="random-flag-kept"),
        pytest.param(tp(flags="03"), (TRACE_ID, SPAN_ID, 3), id="sampled-and-random-kept"),
        pytest.param(tp(flags="04"), (TRACE_ID, SPAN_ID, 0), id="reserved-flag-cleared"),
        pytest.param(tp(flags="ff"), (TRACE_ID, SPAN_ID, 3), id="all-flags-only-known-kept"),
        pytest.param(tp(flags="fd"), (TRACE_ID, SPAN_ID, 1), id="reserved-flags-cleared-sampled"),
        pytest.param(
            tp(trace_hex="0" * 31 + "1", span_hex="0" * 15 + "1"),
            (1, 1, 1),
            id="smallest-nonzero-ids",
        ),
        pytest.param(
            tp(trace_hex="f" * 32, span_hex="f" * 16),
            (2**128 - 1, 2**64 - 1, 1),
            id="largest-ids",
        ),
        pytest.param(tp(version="01"), (TRACE_ID, SPAN_ID, 1), id="future-version-01-exact"),
        pytest.param(tp(version="cc"), (TRACE_ID, SPAN_ID, 1), id="future-version-cc-exact"),
        pytest.param(tp(version="fe"), (TRACE_ID, SPAN_ID, 1), id="future-version-fe"),
        pytest.param(
            tp(version="cc") + "-what-the-future-will-be-like",
            (TRACE_ID, SPAN_ID, 1),
            id="future-version-extra-fields",
        ),
        pytest.param(tp(version="cc") + "-", (TRACE_ID, SPAN_ID, 1), id="future-version-dash"),
        pytest.param(
            tp(version="cc", flags="07") + "-" + "x" * 1000,
            (TRACE_ID, SPAN_ID, 3),
            id="future-version-long-extra-field",
        ),
        pytest.param(" " + VALID_TP, (TRACE_ID, SPAN_ID, 1), id="ows-leading-space"),
        pytest.param("\t" + VALID_TP, (TRACE_ID, SPAN_ID, 1), id="ows-leading-tab"),
        pytest.param(VALID_TP + " ", (TRACE_ID, SPAN_ID, 1), id="ows-trailing-space"),
        pytest.param(VALID_TP + "\t", (TRACE_ID, SPAN_ID, 1), id="ows-trailing-tab"),
        pytest.param("\t " + VALID_TP + " \t", (TRACE_ID, SPAN_ID, 1), id="ows-both-sides"),
        pytest.param(
            "  " + tp(version="cc") + "-extra \t",
            (TRACE_ID, SPAN_ID, 1),
            id="ows-future-version",
        ),
    ],
)
def test_parse_traceparent_valid(header: str, expected: tuple[int, int, int]) -> None:
    assert parse_traceparent(header) == expected


INVALID_TRACEPARENTS = [
    pytest.param("", id="empty"),
    pytest.param(" \t ", id="ows-only"),
    pytest.param(tp(version="ff"), id="version-ff"),
    pytest.param(tp(version="ff") + "-extra", id="version-ff-with-extra-field"),
    pytest.param(tp(version="FF"), id="version-ff-uppercase"),
    pytest.param(tp(version="0A"), id="version-uppercase-hex"),
    pytest.param(tp(version="cC"), id="version-mixed-case"),
    pytest.param(tp(version=".0"), id="version-illegal-char-first"),
    pytest.param(tp(version="0."), id="version-illegal-char-second"),
    pytest.param(tp(version="000"), id="version-too-long"),
    pytest.param(tp(version="0000"), id="version-much-too-long"),
    pytest.param(tp(version="0"), id="version-too-short"),
    pytest.param(tp(version=""), id="version-missing"),
    pytest.param(VALID_TP + ".", id="v00-trailing-char"),
    pytest.param(VALID_TP + "-", id="v00-trailing-dash"),
    pytest.param(VALID_TP + "-what-the-future-will-be-like", id="v00-extra-field"),
    pytest.param(
        tp(version="cc") + ".what-the-future-will-be-like", id="future-version-extra-no-dash"
    ),
    pytest.param(tp(version="cc") + "0", id="future-version-extra-hex-no-dash"),
    pytest.param(tp(version="cc", flags="1"), id="future-version-short-flags"),
    pytest.param(tp(version="cc")[:54], id="future-version-shorter-than-55"),
    pytest.param(tp(trace_hex="0" * 32), id="trace-id-all-zero"),
    pytest.param(tp(span_hex="0" * 16), id="parent-id-all-zero"),
    pytest.param(tp(trace_hex="0" * 32, span_hex="0" * 16), id="both-ids-all-zero"),
    pytest.param(tp(version="cc", trace_hex="0" * 32), id="future-version-trace-id-zero"),
    pytest.param(tp(trace_hex=TRACE_HEX.replace("1", "A")), id="trace-id-uppercase"),
    pytest.param(tp(span_hex="ABCDEF0123456789"), id="parent-id-uppercase"),
    pytest.param(tp(flags="0A"), id="flags-uppercase"),
    pytest.param("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", id="all-uppercase"),
    pytest.param(tp(trace_hex="." + TRACE_HEX[1:]), id="trace-id-illegal-char-first"),
    pytest.param(tp(trace_hex=TRACE_HEX[:-1] + "."), id="trace-id-illegal-char-last"),
    pytest.param(tp(trace_hex=TRACE_HEX[:-1] + "g"), id="trace-id-non-hex-letter"),
    pytest.param(tp(trace_hex=TRACE_HEX + "3"), id="trace-id-too-long"),
    pytest.param(tp(trace_hex=TRACE_HEX[:-1]), id="trace-id-too-short"),
    pytest.param(tp(span_hex="." + SPAN_HEX[1:]), id="parent-id-illegal-char-first"),
    pytest.param(tp(span_hex=SPAN_HEX[:-1] + "."), id="parent-id-illegal-char-last"),
    pytest.param(tp(span_hex=SPAN_HEX + "7"), id="parent-id-too-long"),
    pytest.param(tp(span_hex=SPAN_HEX[:-1]), id="parent-id-too-short"),
    pytest.param(tp(flags=".0"), id="flags-illegal-char-first"),
    pytest.param(tp(flags="0."), id="flags-illegal-char-second"),
    pytest.param(tp(flags="001"), id="flags-too-long"),
    pytest.param(tp(flags="1"), id="flags-too-short"),
    pytest.param(tp(flags=""), id="flags-missing"),
    # int(x, 16) alone would accept each of the next three.
    pytest.param(tp(trace_hex="1234_678901234567890123456789012"), id="trace-id-underscore"),
    pytest.param(tp(span_hex="+234567890123456"), id="parent-id-plus-sign"),
    pytest.param(tp(flags=" 1"), id="flags-inner-space"),
    pytest.param(VALID_TP.replace("-", "_"), id="underscore-separators"),
    pytest.param(VALID_TP.replace("-", ""), id="no-separators"),
    pytest.param(VALID_TP.replace("-", "--", 1), id="double-dash"),
    pytest.param(f"00-{TRACE_HEX}-{SPAN_HEX}", id="flags-field-missing"),
    pytest.param(f"00-{TRACE_HEX}", id="only-version-and-trace-id"),
    pytest.param(VALID_TP + ", " + VALID_TP, id="two-values-comma-joined"),
    pytest.param(tp(version="cc") + ", " + tp(version="cc"), id="two-future-values-comma-joined"),
    # Control characters: only SP and HTAB are OWS.
    pytest.param(VALID_TP + "\n", id="trailing-newline"),
    pytest.param(VALID_TP + "\r\n", id="trailing-crlf"),
    pytest.param("\n" + VALID_TP, id="leading-newline"),
    pytest.param("\v" + VALID_TP, id="leading-vertical-tab"),
    pytest.param("\x00" + VALID_TP, id="leading-nul"),
    pytest.param(VALID_TP[:10] + "\x00" + VALID_TP[11:], id="nul-inside-trace-id"),
    pytest.param(VALID_TP[:40] + "\x7f" + VALID_TP[41:], id="del-inside-parent-id"),
    pytest.param(tp(version="0\t"), id="tab-inside-version"),
    # Non-ASCII characters, including ones Python treats as digits or whitespace.
    pytest.param("\u00a0" + VALID_TP, id="leading-nbsp"),
    pytest.param(VALID_TP + "\u3000", id="trailing-ideographic-space"),
    pytest.param(tp(trace_hex="\u0661" + TRACE_HEX[1:]), id="arabic-indic-digit"),
    pytest.param(tp(trace_hex="\uff11" + TRACE_HEX[1:]), id="fullwidth-digit"),
    pytest.param(tp(span_hex="\u00e9" + SPAN_HEX[1:]), id="latin-letter-with-accent"),
    pytest.param(tp(flags="0\U0001f600"), id="emoji-in-flags"),
    pytest.param(tp(version="\u0660\u0660"), id="non-ascii-version"),
]


@pytest.mark.parametrize("header", INVALID_TRACEPARENTS)
def test_parse_traceparent_invalid(header: str) -> None:
    assert parse_traceparent(header) is None


@pytest.mark.parametrize("header", INVALID_TRACEPARENTS)
def test_extract_invalid_traceparent_returns_context_unchanged(header: str) -> None:
    key = create_key("marker")
    incoming = Context({key: "kept"})
    carrier = {TRACEPARENT_HEADER: header, TRACESTATE_HEADER: "foo=1"}

    result = PROPAGATOR.extract(carrier, incoming)

    assert result is incoming
    assert span_context_of(result) == INVALID_SPAN_CONTEXT


# --------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------


def test_extract_valid_headers_builds_remote_span_context() -> None:
    carrier = {
        TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        TRACESTATE_HEADER: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }

    span_context = span_context_of(PROPAGATOR.extract(carrier))

    assert span_context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert span_context.span_id == 0x00F067AA0BA902B7
    assert span_context.is_remote is True
    assert span_context.is_valid is True
    assert span_context.trace_flags == 1
    assert span_context.trace_flags.sampled is True
    assert list(span_context.trace_state.items()) == [
        ("rojo", "00f067aa0ba902b7"),
        ("congo", "t61rcWkgMzE"),
    ]


def test_extract_keeps_other_context_values() -> None:
    key = create_key("tenant")
    incoming = Context({key: "acme"})

    result = PROPAGATOR.extract({TRACEPARENT_HEADER: VALID_TP}, incoming)

    assert result.get(key) == "acme"
    assert span_context_of(result).trace_id == TRACE_ID
    assert span_context_of(incoming) == INVALID_SPAN_CONTEXT


def test_extract_random_flag_is_visible_on_trace_flags() -> None:
    span_context = span_context_of(PROPAGATOR.extract({TRACEPARENT_HEADER: tp(flags="02")}))

    assert span_context.trace_flags == 2
    assert span_context.trace_flags.random_trace_id is True
    assert span_context.trace_flags.sampled is False


def test_extract_without_context_and_without_header_returns_empty_root_context() -> None:
    result = PROPAGATOR.extract({})

    assert isinstance(result, Context)
    assert len(result) == 0
    assert span_context_of(result) == INVALID_SPAN_CONTEXT


@pytest.mark.parametrize(
    ("values", "expected_trace_id"),
    [
        pytest.param([VALID_TP], TRACE_ID, id="one-value-in-list"),
        pytest.param(VALID_TP, TRACE_ID, id="bare-string"),
        pytest.param([], None, id="empty-list"),
        pytest.param(None, None, id="absent"),
        pytest.param([VALID_TP, VALID_TP], None, id="two-identical-headers"),
        pytest.param([tp(trace_hex="1" * 32), VALID_TP], None, id="two-different-headers"),
        pytest.param(["", VALID_TP], None, id="empty-plus-valid-header"),
        pytest.param([VALID_TP, "garbage"], None, id="valid-plus-garbage-header"),
        pytest.param([VALID_TP.encode()], None, id="bytes-value"),
        pytest.param([None], None, id="none-value"),
    ],
)
def test_extract_traceparent_header_multiplicity(
    values: Any, expected_trace_id: int | None
) -> None:
    getter = RecordingGetter()
    carrier = {TRACEPARENT_HEADER: values, TRACESTATE_HEADER: ["foo=1"]}

    span_context = span_context_of(PROPAGATOR.extract(carrier, getter=getter))

    if expected_trace_id is None:
        assert span_context == INVALID_SPAN_CONTEXT
        # "Tracestate Header": no attempt to parse tracestate without a valid traceparent.
        assert getter.asked == [TRACEPARENT_HEADER]
    else:
        assert span_context.trace_id == expected_trace_id
        assert dict(span_context.trace_state) == {"foo": "1"}
        assert getter.asked == [TRACEPARENT_HEADER, TRACESTATE_HEADER]


def test_extract_default_getter_with_list_of_two_traceparents_is_invalid() -> None:
    carrier = {TRACEPARENT_HEADER: [VALID_TP, VALID_TP]}

    assert span_context_of(PROPAGATOR.extract(carrier)) == INVALID_SPAN_CONTEXT


@pytest.mark.parametrize(
    "tracestate",
    [
        pytest.param("FOO=1", id="uppercase-key"),
        pytest.param("@foo=1", id="key-starts-with-at"),
        pytest.param("foo=1,bar", id="member-without-equals"),
        pytest.param(members(33), id="33-members"),
        pytest.param("foo=caf\u00e9", id="non-ascii-value"),
    ],
)
def test_extract_malformed_tracestate_keeps_traceparent(tracestate: str) -> None:
    carrier = {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: tracestate}

    span_context = span_context_of(PROPAGATOR.extract(carrier))

    assert span_context.trace_id == TRACE_ID
    assert span_context.span_id == SPAN_ID
    assert span_context.trace_flags == 1
    assert len(span_context.trace_state) == 0


def test_extract_combines_multiple_tracestate_headers_in_order() -> None:
    carrier = {
        TRACEPARENT_HEADER: VALID_TP,
        TRACESTATE_HEADER: ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
    }

    state = span_context_of(PROPAGATOR.extract(carrier)).trace_state

    assert state.to_header() == "foo=1,bar=2,rojo=1,congo=2,baz=3"


# --------------------------------------------------------------------------------------------
# tracestate parsing
# --------------------------------------------------------------------------------------------

KEY_256 = "z" * 256
KEY_ALL_CHARS = "a" + ALL_KEY_CHARS
# Starts with a digit and ends with "@": valid in Level 2 only.
DIGIT_KEY_ALL_CHARS = "0" + ALL_KEY_CHARS
# The longest Level 1 multi-tenant key (tenant 241, system 14): valid in both levels.
MT_KEY_MAX = "t" * 241 + "@" + "v" * 14
# 256-character keys that Level 1 rejects: long tenant part, long system part, several "@".
LONG_TENANT_KEY = "t" * 254 + "@v"
LONG_SYSTEM_KEY = "t@" + "v" * 254
AT_KEY_256 = "0" + "@" * 255
# Level 2 keys that opentelemetry's TraceState rejects (Level 1).
LEVEL_2_HEADER = "foo@bar@baz=1,1abc=2"
LEVEL_2_PAIRS = [("foo@bar@baz", "1"), ("1abc", "2")]
VALUE_256 = "v" * 256


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Lists, order, multiple header fields.
        pytest.param(["foo=1"], [("foo", "1")], id="single-member"),
        pytest.param(["foo=1,bar=2"], [("foo", "1"), ("bar", "2")], id="two-members-in-order"),
        pytest.param(["bar=2,foo=1"], [("bar", "2"), ("foo", "1")], id="order-preserved"),
        pytest.param(
            ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
            [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")],
            id="multiple-headers-combined",
        ),
        pytest.param(["foo=1", "BAR=2"], [], id="malformed-in-second-header-drops-all"),
        # Empty values and empty members.
        pytest.param(None, [], id="absent"),
        pytest.param([], [], id="no-header-values"),
        pytest.param([""], [], id="empty-header"),
        pytest.param([" \t "], [], id="ows-only-header"),
        pytest.param(["foo=1", ""], [("foo", "1")], id="empty-second-header"),
        pytest.param(["", "foo=1"], [("foo", "1")], id="empty-first-header"),
        pytest.param(
            [",,foo=1,, ,\t,bar=2,"], [("foo", "1"), ("bar", "2")], id="empty-members-ignored"
        ),
        pytest.param([","], [], id="only-comma"),
        pytest.param("foo=1,bar=2", [("foo", "1"), ("bar", "2")], id="bare-string-header"),
        # OWS (spaces and tabs) around members.
        pytest.param(
            ["foo=1 \t , \t bar=2, \t baz=3"],
            [("foo", "1"), ("bar", "2"), ("baz", "3")],
            id="ows-around-commas",
        ),
        pytest.param(
            ["foo=1\t \t,\t \tbar=2,\t \tbaz=3"],
            [("foo", "1"), ("bar", "2"), ("baz", "3")],
            id="ows-tabs-around-commas",
        ),
        pytest.param([" foo=1"], [("foo", "1")], id="leading-space"),
        pytest.param(["\tfoo=1"], [("foo", "1")], id="leading-tab"),
        pytest.param(["foo=1\t"], [("foo", "1")], id="trailing-tab"),
        pytest.param(["\t foo=1 \t"], [("foo", "1")], id="ows-both-sides"),
        # Values.
        pytest.param(["foo= 1"], [("foo", " 1")], id="value-leading-space-preserved"),
        pytest.param(["foo=a b c"], [("foo", "a b c")], id="value-inner-spaces"),
        # A space at the end of a member is OWS, never part of the value.
        pytest.param(["foo=1 "], [("foo", "1")], id="value-trailing-space-is-ows"),
        pytest.param(["foo=1  ,bar=2"], [("foo", "1"), ("bar", "2")], id="trailing-spaces-ows"),
        pytest.param(["foo= "], [], id="value-single-space-invalid"),
        pytest.param(["foo=   ,bar=2"], [], id="value-only-spaces-invalid"),
        pytest.param(["foo="], [], id="value-empty-invalid"),
        pytest.param(["foo=,bar=3"], [], id="value-empty-drops-all"),
        pytest.param(["foo=bar=baz"], [], id="value-with-equals-invalid"),
        pytest.param(["foo=a,b"], [], id="value-with-comma-splits-into-malformed-member"),
        pytest.param(["foo==1"], [], id="value-starting-with-equals"),
        pytest.param([f"foo={VALUE_256}"], [("foo", VALUE_256)], id="value-256-chars"),
        pytest.param([f"foo=1,bar={VALUE_256}v"], [], id="value-257-chars-drops-all"),
        pytest.param([f"foo={ALL_VALUE_CHARS}"], [("foo", ALL_VALUE_CHARS)], id="value-all-chars"),
        pytest.param(["foo=a\tb"], [], id="value-with-tab"),
        pytest.param(["foo=a\x00b"], [], id="value-with-nul"),
        pytest.param(["foo=1\x7f"], [], id="value-with-del"),
        pytest.param(["foo=a\nb"], [], id="value-with-newline"),
        pytest.param(["foo=1\r\n"], [], id="crlf-is-not-ows"),
        pytest.param(["foo=caf\u00e9"], [], id="value-non-ascii"),
        pytest.param(["foo=1\u00a0"], [], id="value-trailing-nbsp"),
        pytest.param(["foo=\U0001f600"], [], id="value-emoji"),
        # Simple keys.
        pytest.param([f"{KEY_256}=1"], [(KEY_256, "1")], id="key-256-chars"),
        pytest.param(["foo=1", f"{KEY_256}z=1"], [], id="key-257-chars-drops-all"),
        pytest.param([f"{KEY_ALL_CHARS}=1"], [(KEY_ALL_CHARS, "1")], id="key-all-chars"),
        pytest.param(["a=1"], [("a", "1")], id="key-one-char"),
        pytest.param(["=1"], [], id="key-empty"),
        pytest.param(["FOO=1"], [], id="key-uppercase"),
        pytest.param(["fOo=1"], [], id="key-mixed-case"),
        pytest.param(["foo.bar=1"], [], id="key-with-dot"),
        pytest.param(["foo =1"], [], id="key-trailing-space"),
        pytest.param(["foo\t=1"], [], id="key-trailing-tab"),
        pytest.param(["_foo=1"], [], id="key-starts-with-underscore"),
        pytest.param(["1foo=1"], [("1foo", "1")], id="key-starts-with-digit"),
        pytest.param(["1=1"], [("1", "1")], id="key-single-digit"),
        pytest.param(["0123=1"], [("0123", "1")], id="key-all-digits"),
        pytest.param(
            [f"{DIGIT_KEY_ALL_CHARS}=1"], [(DIGIT_KEY_ALL_CHARS, "1")], id="digit-key-all-chars"
        ),
        pytest.param(["-foo=1"], [], id="key-starts-with-dash"),
        pytest.param(["*foo=1"], [], id="key-starts-with-asterisk"),
        pytest.param(["/foo=1"], [], id="key-starts-with-slash"),
        pytest.param(["Foo=1"], [], id="key-starts-with-uppercase"),
        pytest.param(["f\u00f6o=1"], [], id="key-non-ascii"),
        pytest.param(["\u00a0foo=1"], [], id="nbsp-is-not-ows"),
        pytest.param(["foo"], [], id="member-without-equals"),
        pytest.param(["foo=1,BAR=2,baz=3"], [], id="one-malformed-member-drops-all"),
        # "@" in keys (Level 2: any keychar after the first character, no tenant/system limits).
        pytest.param(["tenant@vendor=1"], [("tenant@vendor", "1")], id="multi-tenant-key"),
        pytest.param(["1tenant@vendor=1"], [("1tenant@vendor", "1")], id="tenant-starts-digit"),
        pytest.param([f"{MT_KEY_MAX}=1"], [(MT_KEY_MAX, "1")], id="tenant-241-system-14"),
        pytest.param(
            ["foo=1", "t" * 242 + "@v=1"],
            [("foo", "1"), ("t" * 242 + "@v", "1")],
            id="tenant-242-kept",
        ),
        pytest.param(
            ["foo=1", "t@" + "v" * 15 + "=1"],
            [("foo", "1"), ("t@" + "v" * 15, "1")],
            id="system-15-kept",
        ),
        pytest.param([f"{LONG_TENANT_KEY}=1"], [(LONG_TENANT_KEY, "1")], id="tenant-254-system-1"),
        pytest.param([f"{LONG_SYSTEM_KEY}=1"], [(LONG_SYSTEM_KEY, "1")], id="tenant-1-system-254"),
        pytest.param([f"{AT_KEY_256}=1"], [(AT_KEY_256, "1")], id="key-256-chars-mostly-at"),
        pytest.param(["foo=1", f"{LONG_TENANT_KEY}z=1"], [], id="key-257-chars-with-at-drops-all"),
        pytest.param(["foo=1", f"{AT_KEY_256}@=1"], [], id="key-257-chars-all-at-drops-all"),
        pytest.param(["foo@=1,bar=2"], [("foo@", "1"), ("bar", "2")], id="key-ends-with-at"),
        pytest.param(["foo@@bar=1,bar=2"], [("foo@@bar", "1"), ("bar", "2")], id="double-at"),
        pytest.param(
            ["foo@bar@baz=1,bar=2"], [("foo@bar@baz", "1"), ("bar", "2")], id="two-at-signs"
        ),
        pytest.param(["foo@1bar=1"], [("foo@1bar", "1")], id="digit-after-at"),
        pytest.param(["foo@_bar=1"], [("foo@_bar", "1")], id="underscore-after-at"),
        pytest.param(["f@=1"], [("f@", "1")], id="letter-then-at"),
        pytest.param(["@foo=1,bar=2"], [], id="key-starts-with-at"),
        pytest.param(["@=1"], [], id="key-only-at"),
        pytest.param(["foo=1", "@@=2"], [], id="key-only-ats-drops-all"),
        pytest.param(["foo@Bar=1"], [], id="uppercase-after-at"),
        pytest.param(["Foo@bar=1"], [], id="uppercase-before-at"),
        pytest.param(["FOO@BAR=1"], [], id="uppercase-key-with-at"),
        pytest.param(["_foo@bar=1"], [], id="key-with-at-starts-with-underscore"),
        pytest.param(["foo@bar.baz=1"], [], id="key-with-at-and-dot"),
        pytest.param(["foo@b\u00e4r=1"], [], id="key-with-at-non-ascii"),
        pytest.param([LEVEL_2_HEADER], LEVEL_2_PAIRS, id="level-2-keys-in-order"),
        pytest.param(
            [LEVEL_2_HEADER + ",foo@bar@baz=3"], LEVEL_2_PAIRS, id="level-2-duplicate-keeps-first"
        ),
        # Member count.
        pytest.param([members(32)], member_pairs(32), id="32-members"),
        pytest.param([members(33)], [], id="33-members-drops-all"),
        pytest.param(
            [members(10), members(10, 11), members(10, 21), members(2, 31)],
            member_pairs(32),
            id="32-members-across-headers",
        ),
        pytest.param(
            [members(10), members(10, 11), members(10, 21), members(3, 31)],
            [],
            id="33-members-across-headers-drops-all",
        ),
        pytest.param(
            [",, ," + members(32).replace(",", ", ,\t,") + ",,"],
            member_pairs(32),
            id="32-members-plus-empty-members",
        ),
        pytest.param([members(32) + ",bar01=99"], [], id="33-members-with-a-duplicate-drops-all"),
        # Duplicate keys: the first occurrence wins.
        pytest.param(["foo=1,foo=1"], [("foo", "1")], id="duplicate-same-value"),
        pytest.param(["foo=1,foo=2"], [("foo", "1")], id="duplicate-keeps-first"),
        pytest.param(["foo=1", "foo=2"], [("foo", "1")], id="duplicate-across-headers"),
        pytest.param(
            ["foo=1,bar=2,foo=3,baz=4"],
            [("foo", "1"), ("bar", "2"), ("baz", "4")],
            id="duplicate-later-dropped-order-kept",
        ),
        pytest.param(["foo=1,foo=2,FOO=3"], [], id="duplicate-then-malformed-drops-all"),
    ],
)
def test_parse_tracestate(headers: list[str] | str | None, expected: Pairs) -> None:
    state = parse_tracestate(headers)

    assert isinstance(state, TraceState)
    assert list(state.items()) == expected


def test_parse_tracestate_non_string_header_value_drops_all() -> None:
    assert len(parse_tracestate(["foo=1", b"bar=2"])) == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            f"{KEY_256}={VALUE_256}", f"{KEY_256}={VALUE_256}", id="longest-simple-key-and-value"
        ),
        pytest.param(
            f"{MT_KEY_MAX}={VALUE_256}", f"{MT_KEY_MAX}={VALUE_256}", id="longest-multi-tenant-key"
        ),
        pytest.param(
            f"{DIGIT_KEY_ALL_CHARS}={ALL_VALUE_CHARS}",
            f"{DIGIT_KEY_ALL_CHARS}={ALL_VALUE_CHARS}",
            id="all-allowed-characters",
        ),
        pytest.param(LEVEL_2_HEADER, LEVEL_2_HEADER, id="level-2-only-keys"),
        pytest.param(
            f"{LONG_TENANT_KEY}=1,{LONG_SYSTEM_KEY}=2,{AT_KEY_256}=3",
            f"{LONG_TENANT_KEY}=1,{LONG_SYSTEM_KEY}=2,{AT_KEY_256}=3",
            id="longest-level-2-only-keys",
        ),
        pytest.param(
            ",".join(f"{i}@x@{i}={i}" for i in range(32)),
            ",".join(f"{i}@x@{i}={i}" for i in range(32)),
            id="32-level-2-only-keys",
        ),
        pytest.param(members(32), members(32), id="32-members"),
        pytest.param("foo=1,foo=2", "foo=1", id="duplicate-key"),
        pytest.param(members(33), "", id="33-members"),
        pytest.param("@foo=1", "", id="invalid-key-leading-at"),
        pytest.param(f"{AT_KEY_256}@=1", "", id="invalid-key-257-chars"),
        pytest.param("foo=caf\u00e9", "", id="invalid-value"),
    ],
)
def test_tracestate_parsing_logs_nothing(
    header: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    # opentelemetry's TraceState logs a warning for every pair its Level 1 check rejects; our
    # Level 2 pairs must be kept without reaching that check, and invalid input dropped silently.
    carrier = {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: header}

    with caplog.at_level(logging.DEBUG):
        state = span_context_of(PROPAGATOR.extract(carrier)).trace_state

    assert caplog.records == []
    assert state.to_header() == expected


# --------------------------------------------------------------------------------------------
# inject and format_traceparent
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_context", "expected"),
    [
        pytest.param(remote(), VALID_TP, id="sampled"),
        pytest.param(remote(flags=0), tp(flags="00"), id="not-sampled"),
        pytest.param(remote(flags=3), tp(flags="03"), id="sampled-and-random"),
        pytest.param(remote(flags=0xFF), tp(flags="03"), id="reserved-flags-cleared"),
        pytest.param(
            remote(trace_id=1, span_id=1),
            "00-00000000000000000000000000000001-0000000000000001-01",
            id="zero-padded-ids",
        ),
        pytest.param(
            remote(trace_id=2**128 - 1, span_id=2**64 - 1),
            f"00-{'f' * 32}-{'f' * 16}-01",
            id="max-ids",
        ),
        pytest.param(
            SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1)),
            VALID_TP,
            id="local-span-context",
        ),
    ],
)
def test_format_traceparent(span_context: SpanContext, expected: str) -> None:
    assert format_traceparent(span_context) == expected


@pytest.mark.parametrize(
    "span_context",
    [
        pytest.param(INVALID_SPAN_CONTEXT, id="invalid-span-context"),
        pytest.param(remote(trace_id=0), id="zero-trace-id"),
        pytest.param(remote(span_id=0), id="zero-span-id"),
        pytest.param(remote(trace_id=2**128), id="trace-id-too-large"),
        pytest.param(remote(span_id=2**64), id="span-id-too-large"),
    ],
)
def test_format_traceparent_rejects_invalid_span_context(span_context: SpanContext) -> None:
    with pytest.raises(ValueError, match="invalid span context"):
        format_traceparent(span_context)


@pytest.mark.parametrize(
    ("span_context", "expected"),
    [
        pytest.param(remote(), {TRACEPARENT_HEADER: VALID_TP}, id="no-tracestate"),
        pytest.param(
            remote(flags=0, state=[("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]),
            {
                TRACEPARENT_HEADER: tp(flags="00"),
                TRACESTATE_HEADER: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            },
            id="with-tracestate",
        ),
        pytest.param(
            remote(state=[(MT_KEY_MAX, " leading space")]),
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: f"{MT_KEY_MAX}= leading space"},
            id="multi-tenant-key-and-leading-space",
        ),
        pytest.param(
            remote(state=parse_tracestate([LEVEL_2_HEADER])),
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: LEVEL_2_HEADER},
            id="level-2-keys",
        ),
        pytest.param(INVALID_SPAN_CONTEXT, {}, id="invalid-span-context"),
        pytest.param(remote(trace_id=0), {}, id="zero-trace-id"),
        pytest.param(remote(span_id=0), {}, id="zero-span-id"),
    ],
)
def test_inject(span_context: SpanContext, expected: dict[str, str]) -> None:
    carrier: dict[str, str] = {}

    PROPAGATOR.inject(carrier, context_with(span_context))

    assert carrier == expected


def test_inject_without_span_writes_nothing() -> None:
    carrier: dict[str, str] = {}

    PROPAGATOR.inject(carrier, Context())

    assert carrier == {}


def test_inject_uses_current_context_by_default() -> None:
    carrier: dict[str, str] = {}

    with trace.use_span(NonRecordingSpan(remote(state=[("foo", "1")]))):
        PROPAGATOR.inject(carrier)

    assert carrier == {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: "foo=1"}


def test_inject_uses_the_setter() -> None:
    calls: list[tuple[str, str]] = []

    class ListSetter(textmap.Setter[list[tuple[str, str]]]):
        def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
            carrier.append((key, value))

    PROPAGATOR.inject(calls, context_with(remote(state=[("foo", "1")])), setter=ListSetter())

    assert calls == [(TRACEPARENT_HEADER, VALID_TP), (TRACESTATE_HEADER, "foo=1")]


def test_fields() -> None:
    assert PROPAGATOR.fields == {"traceparent", "tracestate"}


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "outgoing"),
    [
        pytest.param({TRACEPARENT_HEADER: VALID_TP}, {TRACEPARENT_HEADER: VALID_TP}, id="plain"),
        pytest.param(
            {TRACEPARENT_HEADER: tp(flags="00"), TRACESTATE_HEADER: "foo=1,bar=2"},
            {TRACEPARENT_HEADER: tp(flags="00"), TRACESTATE_HEADER: "foo=1,bar=2"},
            id="with-tracestate",
        ),
        pytest.param(
            {TRACEPARENT_HEADER: tp(flags="03"), TRACESTATE_HEADER: members(32)},
            {TRACEPARENT_HEADER: tp(flags="03"), TRACESTATE_HEADER: members(32)},
            id="random-flag-and-32-members",
        ),
        pytest.param(
            {
                TRACEPARENT_HEADER: " \t" + VALID_TP + "\t",
                TRACESTATE_HEADER: [" foo=1 ,, bar= 2 ", "", "\tbaz=3,foo=4"],
            },
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: "foo=1,bar= 2,baz=3"},
            id="normalised-ows-empty-members-duplicates",
        ),
        pytest.param(
            {
                TRACEPARENT_HEADER: tp(version="cc", flags="f1") + "-future",
                TRACESTATE_HEADER: "a=b",
            },
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: "a=b"},
            id="future-version-downgraded-to-00",
        ),
        pytest.param(
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: "a=b,C=d"},
            {TRACEPARENT_HEADER: VALID_TP},
            id="malformed-tracestate-not-forwarded",
        ),
        pytest.param(
            {
                TRACEPARENT_HEADER: VALID_TP,
                TRACESTATE_HEADER: [f"{LEVEL_2_HEADER}, foo@=3", f"{LONG_SYSTEM_KEY}=4,1abc=5"],
            },
            {
                TRACEPARENT_HEADER: VALID_TP,
                TRACESTATE_HEADER: f"{LEVEL_2_HEADER},foo@=3,{LONG_SYSTEM_KEY}=4",
            },
            id="level-2-keys-forwarded",
        ),
        pytest.param(
            {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: LEVEL_2_HEADER + ",@bad=1"},
            {TRACEPARENT_HEADER: VALID_TP},
            id="level-2-keys-with-malformed-member-not-forwarded",
        ),
        pytest.param({TRACEPARENT_HEADER: tp(version="ff")}, {}, id="invalid-traceparent"),
    ],
)
def test_round_trip_extract_then_inject(incoming: dict[str, Any], outgoing: dict[str, str]) -> None:
    carrier: dict[str, str] = {}

    PROPAGATOR.inject(carrier, PROPAGATOR.extract(incoming))

    assert carrier == outgoing


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(VALID_TP, id="sampled"),
        pytest.param(tp(flags="00"), id="not-sampled"),
        pytest.param(tp(flags="02"), id="random"),
        pytest.param("00-00000000000000000000000000000001-0000000000000001-01", id="small-ids"),
    ],
)
def test_round_trip_parse_then_format(header: str) -> None:
    parsed = parse_traceparent(header)
    assert parsed is not None
    trace_id, span_id, flags = parsed

    span_context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))

    assert format_traceparent(span_context) == header


# --------------------------------------------------------------------------------------------
# Garbage input never raises
# --------------------------------------------------------------------------------------------

GARBAGE = [
    pytest.param("", id="empty"),
    pytest.param("-", id="dash"),
    pytest.param("---", id="dashes"),
    pytest.param("00", id="version-only"),
    pytest.param("00-", id="version-and-dash"),
    pytest.param("-" * 55, id="55-dashes"),
    pytest.param("0" * 55, id="55-zeros"),
    pytest.param("\x00" * 100, id="nuls"),
    pytest.param("".join(chr(c) for c in range(32)), id="all-control-chars"),
    pytest.param(bytes(range(256)).decode("latin-1"), id="all-latin-1"),
    pytest.param("\U0001f600" * 55, id="emoji-55"),
    pytest.param("\ud800" * 10, id="lone-surrogates"),
    pytest.param("ff" * 10_000, id="long-ff"),
    pytest.param("00-" + "a" * 1_000_000, id="long-after-version"),
    pytest.param("a" * 1_000_000, id="long-letters"),
    pytest.param(" " * 1_000_000, id="long-spaces"),
    pytest.param(" " * 500_000 + VALID_TP + "x" + " " * 500_000, id="long-padding-invalid"),
    pytest.param(VALID_TP * 1000, id="repeated-traceparent"),
    pytest.param(",".join([VALID_TP] * 1000), id="comma-joined-traceparents"),
    pytest.param("=" * 10_000, id="equals"),
    pytest.param("00-" + "0" * 32 + "-" + "0" * 16 + "-00", id="all-zero"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_traceparent_never_raises(garbage: str) -> None:
    incoming = Context()

    result = PROPAGATOR.extract({TRACEPARENT_HEADER: garbage, TRACESTATE_HEADER: garbage}, incoming)

    assert result is incoming
    assert parse_traceparent(garbage) is None


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_tracestate_never_raises(garbage: str) -> None:
    carrier = {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: [garbage, garbage]}

    span_context = span_context_of(PROPAGATOR.extract(carrier))

    assert span_context.trace_id == TRACE_ID
    assert len(span_context.trace_state) == 0


@pytest.mark.parametrize(
    ("header", "expected_len"),
    [
        pytest.param("," * 1_000_000, 0, id="million-commas"),
        pytest.param(" ,\t" * 300_000 + "foo=1", 1, id="huge-ows-then-member"),
        pytest.param("foo=1," + "a" * 1_000_000, 0, id="huge-member"),
        pytest.param("foo=" + "b" * 1_000_000, 0, id="huge-value"),
        pytest.param("a" * 1_000_000 + "=1", 0, id="huge-key"),
        pytest.param(members(32) + ",x=1" * 100_000, 0, id="many-members"),
    ],
)
def test_long_tracestate(header: str, expected_len: int) -> None:
    assert len(parse_tracestate([header])) == expected_len


# --------------------------------------------------------------------------------------------
# The extracted TraceState: Level 2 members survive mutation and the SDK
# --------------------------------------------------------------------------------------------


def full_level_2_state() -> TraceState:
    return parse_tracestate([",".join(f"{i}@x@{i}={i}" for i in range(32))])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda s: s.add("new", "v"), [("new", "v"), *LEVEL_2_PAIRS], id="add-level-1-key"
        ),
        pytest.param(
            lambda s: s.add("2@x@y", "v"), [("2@x@y", "v"), *LEVEL_2_PAIRS], id="add-level-2-key"
        ),
        pytest.param(
            lambda s: s.update("1abc", "v"),
            [("1abc", "v"), ("foo@bar@baz", "1")],
            id="update-moves-key-first",
        ),
        pytest.param(
            lambda s: s.update("foo@", "v"), [("foo@", "v"), *LEVEL_2_PAIRS], id="update-upserts"
        ),
        pytest.param(lambda s: s.delete("foo@bar@baz"), [("1abc", "2")], id="delete"),
        pytest.param(
            lambda s: s.delete("1abc").add("1abc", "3"),
            [("1abc", "3"), ("foo@bar@baz", "1")],
            id="delete-then-add",
        ),
    ],
)
def test_extracted_trace_state_mutations_keep_level_2_members(
    mutate: Callable[[TraceState], TraceState], expected: Pairs, caplog: pytest.LogCaptureFixture
) -> None:
    state = parse_tracestate([LEVEL_2_HEADER])

    with caplog.at_level(logging.DEBUG):
        mutated = mutate(state)

    assert list(mutated.items()) == expected
    assert type(mutated) is type(state)
    assert list(state.items()) == LEVEL_2_PAIRS
    assert caplog.records == []


@pytest.mark.parametrize(
    ("state", "mutate"),
    [
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]), lambda s: s.add("@x", "1"), id="add-bad-key"
        ),
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]), lambda s: s.add("x", "a,b"), id="add-bad-value"
        ),
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]), lambda s: s.add("1abc", "3"), id="add-existing"
        ),
        pytest.param(full_level_2_state(), lambda s: s.add("x", "1"), id="add-to-32-members"),
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]), lambda s: s.update("X", "1"), id="update-bad-key"
        ),
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]),
            lambda s: s.update("1abc", "2 "),
            id="update-bad-value",
        ),
        pytest.param(full_level_2_state(), lambda s: s.update("x", "1"), id="update-new-key-at-32"),
        pytest.param(
            parse_tracestate([LEVEL_2_HEADER]), lambda s: s.delete("x"), id="delete-missing"
        ),
    ],
)
def test_extracted_trace_state_rejected_mutations_return_it_unchanged(
    state: TraceState, mutate: Callable[[TraceState], TraceState], caplog: pytest.LogCaptureFixture
) -> None:
    before = list(state.items())

    with caplog.at_level(logging.WARNING):
        assert mutate(state) is state

    assert list(state.items()) == before
    # Like opentelemetry's TraceState, a rejected mutation is reported as a warning.
    assert [record.levelno for record in caplog.records] == [logging.WARNING]


def test_extracted_trace_state_update_existing_key_at_32_members() -> None:
    state = full_level_2_state()

    updated = state.update("31@x@31", "new")

    assert list(updated.items())[:2] == [("31@x@31", "new"), ("0@x@0", "0")]
    assert len(updated) == 32


def test_extracted_trace_state_absent_header_accepts_level_2_keys() -> None:
    assert list(parse_tracestate(None).add("1abc", "2").items()) == [("1abc", "2")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([LEVEL_2_HEADER], LEVEL_2_PAIRS, id="level-2-keys"),
        pytest.param(["foo=1", "foo=2"], [("foo", "1")], id="duplicate-keeps-first"),
        pytest.param([members(33)], [], id="33-members"),
        pytest.param(["@foo=1"], [], id="malformed"),
    ],
)
def test_extracted_trace_state_from_header_uses_level_2_rules(
    headers: list[str], expected: Pairs
) -> None:
    cls = type(parse_tracestate(None))

    assert list(cls.from_header(headers).items()) == expected


class UpdatingSampler(Sampler):
    """Samples everything and moves its own member to the front, as a vendor sampler may."""

    def __init__(self, key: str) -> None:
        self.key = key

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent_state = span_context_of(parent_context or Context()).trace_state
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE, None, parent_state.update(self.key, "ours")
        )

    def get_description(self) -> str:
        return "UpdatingSampler"


@pytest.fixture
def sdk_tracer() -> Iterator[Callable[[Sampler], trace.Tracer]]:
    providers: list[TracerProvider] = []

    def make(sampler: Sampler) -> trace.Tracer:
        provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
        providers.append(provider)
        return provider.get_tracer(__name__)

    yield make
    for provider in providers:
        provider.shutdown()


def test_sdk_child_span_forwards_level_2_tracestate(
    sdk_tracer: Callable[[Sampler], trace.Tracer], caplog: pytest.LogCaptureFixture
) -> None:
    # A service receives Level 2 keys, handles the request in an SDK span and calls downstream:
    # the outbound tracestate must carry the received members unchanged.
    tracer = sdk_tracer(DEFAULT_ON)
    incoming = {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: LEVEL_2_HEADER}
    outgoing: dict[str, str] = {}

    with caplog.at_level(logging.DEBUG):
        child = tracer.start_span("handle", context=PROPAGATOR.extract(incoming))
        PROPAGATOR.inject(outgoing, trace.set_span_in_context(child))
        child.end()

    child_context = child.get_span_context()
    # A real SDK span, whose span context the SDK built from the sampler's trace_state.
    assert isinstance(child, ReadableSpan)
    assert child_context.trace_id == TRACE_ID
    assert child_context.span_id != SPAN_ID
    assert outgoing == {
        TRACEPARENT_HEADER: format_traceparent(child_context),
        TRACESTATE_HEADER: LEVEL_2_HEADER,
    }
    assert list(parse_tracestate([outgoing[TRACESTATE_HEADER]]).items()) == LEVEL_2_PAIRS
    assert caplog.records == []


@pytest.mark.parametrize(
    "sampler",
    [
        pytest.param(DEFAULT_ON, id="parent-based-always-on"),
        pytest.param(DEFAULT_OFF, id="parent-based-always-off"),
        pytest.param(ALWAYS_ON, id="always-on"),
        pytest.param(ALWAYS_OFF, id="always-off"),
        pytest.param(TraceIdRatioBased(0.5), id="trace-id-ratio"),
        pytest.param(ParentBasedTraceIdRatio(0.0), id="parent-based-trace-id-ratio"),
    ],
)
@pytest.mark.parametrize("flags", ["00", "01", "03"])
def test_sdk_nested_spans_forward_level_2_tracestate(
    sampler: Sampler,
    flags: str,
    sdk_tracer: Callable[[Sampler], trace.Tracer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracer = sdk_tracer(sampler)
    header = f"{LEVEL_2_HEADER},{LONG_TENANT_KEY}=3,{AT_KEY_256}=4"
    incoming = {TRACEPARENT_HEADER: tp(flags=flags), TRACESTATE_HEADER: header}
    outgoing: dict[str, str] = {}

    with (
        caplog.at_level(logging.DEBUG),
        tracer.start_as_current_span("handle", context=PROPAGATOR.extract(incoming)),
        tracer.start_as_current_span("call-downstream") as grandchild,
    ):
        PROPAGATOR.inject(outgoing)

    assert outgoing == {
        TRACEPARENT_HEADER: format_traceparent(grandchild.get_span_context()),
        TRACESTATE_HEADER: header,
    }
    assert grandchild.get_span_context().trace_id == TRACE_ID
    assert caplog.records == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("ours", "ours=ours,foo@bar@baz=1,1abc=2", id="new-key"),
        pytest.param("1abc", "1abc=ours,foo@bar@baz=1", id="existing-level-2-key"),
        pytest.param("ours@x@y", "ours@x@y=ours,foo@bar@baz=1,1abc=2", id="new-level-2-key"),
    ],
)
def test_sdk_sampler_updating_tracestate_keeps_level_2_members(
    key: str,
    expected: str,
    sdk_tracer: Callable[[Sampler], trace.Tracer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracer = sdk_tracer(UpdatingSampler(key))
    incoming = {TRACEPARENT_HEADER: VALID_TP, TRACESTATE_HEADER: LEVEL_2_HEADER}
    outgoing: dict[str, str] = {}

    with (
        caplog.at_level(logging.DEBUG),
        tracer.start_as_current_span("handle", context=PROPAGATOR.extract(incoming)),
    ):
        PROPAGATOR.inject(outgoing)

    assert outgoing[TRACESTATE_HEADER] == expected
    assert caplog.records == []


# --------------------------------------------------------------------------------------------
# Agreement with OpenTelemetry's stock propagator where both are right
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "carrier",
    [
        pytest.param(
            {TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            id="traceparent-only",
        ),
        pytest.param(
            {
                TRACEPARENT_HEADER: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                TRACESTATE_HEADER: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            },
            id="with-tracestate",
        ),
        pytest.param(
            {
                TRACEPARENT_HEADER: VALID_TP,
                TRACESTATE_HEADER: ["foo=1, bar=2", "tenant@vendor=x y"],
            },
            id="multiple-tracestate-headers",
        ),
        pytest.param(
            {TRACEPARENT_HEADER: tp(version="cc") + "-extra", TRACESTATE_HEADER: "a=1"},
            id="future-version",
        ),
        pytest.param({TRACEPARENT_HEADER: tp(version="ff")}, id="invalid-version"),
    ],
)
def test_matches_stock_opentelemetry_propagator(carrier: dict[str, Any]) -> None:
    stock = TraceContextTextMapPropagator()

    ours_context = span_context_of(PROPAGATOR.extract(carrier))
    stock_context = span_context_of(stock.extract(carrier))
    ours_out: dict[str, str] = {}
    stock_out: dict[str, str] = {}
    PROPAGATOR.inject(ours_out, context_with(ours_context))
    stock.inject(stock_out, context_with(stock_context))

    assert ours_context == stock_context
    assert list(ours_context.trace_state.items()) == list(stock_context.trace_state.items())
    assert ours_out == stock_out
