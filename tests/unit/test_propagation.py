"""W3C Trace Context propagation: extract, inject, round trips and ``OTEL_PROPAGATORS``.

Everything goes through the public propagator with dict carriers and the stock getter (a list
value is a header field sent more than once). The cases follow the W3C Trace Context Level 2
test suite (w3c/trace-context, test/test.py): tracestate keys use the Level 2 grammar
(( lcalpha / DIGIT ) 0*255( keychar ), "@" anywhere after the first character), and where the
spec leaves a choice the first of two duplicate tracestate keys wins.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context, create_key
from opentelemetry.propagators import textmap
from opentelemetry.sdk.trace import TracerProvider
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
from opentelemetry.util.types import Attributes

from cello_telemetry import OpenTelemetryConfig
from cello_telemetry.config import resolve
from cello_telemetry.propagation import (
    TRACEPARENT,
    TRACESTATE,
    Level2TraceState,
    TraceContextPropagator,
    propagator_for,
)

TRACE_HEX = "12345678901234567890123456789012"
SPAN_HEX = "1234567890123456"
TRACE_ID = int(TRACE_HEX, 16)
SPAN_ID = int(SPAN_HEX, 16)
PROPAGATOR = TraceContextPropagator()


def tp(
    version: str = "00", trace_hex: str = TRACE_HEX, span_hex: str = SPAN_HEX, flags: str = "01"
) -> str:
    return f"{version}-{trace_hex}-{span_hex}-{flags}"


VALID_TP = tp()


def members(count: int, start: int = 1) -> str:
    return ",".join(f"bar{i:02d}={i:02d}" for i in range(start, start + count))


def pairs(header: str) -> list[tuple[str, str]]:
    return [(key, value) for key, _, value in (m.partition("=") for m in header.split(",") if m)]


def extracted(carrier: dict[str, Any]) -> SpanContext:
    return trace.get_current_span(PROPAGATOR.extract(carrier)).get_span_context()


def remote(flags: int = 1, state: TraceState | None = None, **ids: int) -> SpanContext:
    return SpanContext(
        ids.get("trace_id", TRACE_ID),
        ids.get("span_id", SPAN_ID),
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=state,
    )


def injected(span_context: SpanContext) -> dict[str, str]:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, trace.set_span_in_context(NonRecordingSpan(span_context)))
    return carrier


# -- traceparent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "flags"),
    [
        pytest.param(VALID_TP, 1, id="v00-sampled"),
        pytest.param(tp(flags="00"), 0, id="v00-not-sampled"),
        pytest.param([VALID_TP], 1, id="one-header-field"),
        # trace-flags: sampled (01) and random-trace-id (02) are kept, undefined bits cleared.
        pytest.param(tp(flags="02"), 2, id="random-kept"),
        pytest.param(tp(flags="03"), 3, id="sampled-and-random-kept"),
        pytest.param(tp(flags="04"), 0, id="undefined-bit-cleared"),
        pytest.param(tp(flags="fd"), 1, id="undefined-bits-cleared-sampled-kept"),
        pytest.param(tp(flags="ff"), 3, id="all-bits-only-defined-kept"),
        # Future versions: read the version 00 fields, ignore what follows a "-".
        pytest.param(tp(version="01"), 1, id="version-01"),
        pytest.param(tp(version="cc"), 1, id="version-cc"),
        pytest.param(tp(version="fe"), 1, id="version-fe"),
        pytest.param(tp(version="cc") + "-what-the-future-will-be-like", 1, id="version-cc-extra"),
        pytest.param(tp(version="cc") + "-", 1, id="version-cc-trailing-dash"),
        pytest.param(tp(version="cc", flags="07") + "-" + "x" * 1000, 3, id="version-cc-flags"),
        # OWS: spaces and tabs around the value.
        pytest.param(" " + VALID_TP, 1, id="ows-leading-space"),
        pytest.param("\t" + VALID_TP, 1, id="ows-leading-tab"),
        pytest.param(VALID_TP + " ", 1, id="ows-trailing-space"),
        pytest.param("\t " + VALID_TP + " \t", 1, id="ows-both-sides"),
        pytest.param("  " + tp(version="cc") + "-extra \t", 1, id="ows-version-cc"),
    ],
)
def test_valid_traceparent(header: str | list[str], flags: int) -> None:
    span_context = extracted({TRACEPARENT: header})

    assert (span_context.trace_id, span_context.span_id) == (TRACE_ID, SPAN_ID)
    assert span_context.trace_flags == flags
    assert isinstance(span_context.trace_flags, TraceFlags)
    assert span_context.is_remote


@pytest.mark.parametrize(
    ("header", "ids"),
    [
        pytest.param(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7),
            id="spec-example",
        ),
        pytest.param(tp(trace_hex="0" * 31 + "1", span_hex="0" * 15 + "1"), (1, 1), id="min"),
        pytest.param(tp(trace_hex="f" * 32, span_hex="f" * 16), (2**128 - 1, 2**64 - 1), id="max"),
    ],
)
def test_traceparent_ids(header: str, ids: tuple[int, int]) -> None:
    span_context = extracted({TRACEPARENT: header})

    assert (span_context.trace_id, span_context.span_id) == ids


INVALID_TRACEPARENTS = [
    pytest.param("", id="empty"),
    pytest.param(" \t ", id="ows-only"),
    pytest.param([], id="no-header-field"),
    # Version.
    pytest.param(tp(version="ff"), id="version-ff"),
    pytest.param(tp(version="ff") + "-extra", id="version-ff-extra-field"),
    pytest.param(tp(version="FF"), id="version-uppercase"),
    pytest.param(tp(version="0A"), id="version-uppercase-hex"),
    pytest.param(tp(version=".0"), id="version-illegal-char"),
    pytest.param(tp(version="000"), id="version-too-long"),
    pytest.param(tp(version="0"), id="version-too-short"),
    pytest.param(tp(version=""), id="version-missing"),
    pytest.param(VALID_TP + "-", id="v00-trailing-dash"),
    pytest.param(VALID_TP + ".", id="v00-trailing-char"),
    pytest.param(VALID_TP + "-what-the-future-will-be-like", id="v00-extra-field"),
    pytest.param(tp(version="cc") + ".what-the-future", id="version-cc-extra-without-dash"),
    pytest.param(tp(version="cc") + "0", id="version-cc-extra-hex-without-dash"),
    pytest.param(tp(version="cc", flags="1"), id="version-cc-short-flags"),
    # All-zero ids.
    pytest.param(tp(trace_hex="0" * 32), id="trace-id-all-zero"),
    pytest.param(tp(span_hex="0" * 16), id="parent-id-all-zero"),
    pytest.param(tp(version="cc", trace_hex="0" * 32), id="version-cc-trace-id-all-zero"),
    # Upper-case hex.
    pytest.param(tp(trace_hex=TRACE_HEX.replace("1", "A")), id="trace-id-uppercase"),
    pytest.param(tp(span_hex="ABCDEF0123456789"), id="parent-id-uppercase"),
    pytest.param(tp(flags="0A"), id="flags-uppercase"),
    pytest.param("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", id="all-uppercase"),
    # Lengths and characters.
    pytest.param(tp(trace_hex=TRACE_HEX + "3"), id="trace-id-too-long"),
    pytest.param(tp(trace_hex=TRACE_HEX[:-1]), id="trace-id-too-short"),
    pytest.param(tp(trace_hex=TRACE_HEX[:-1] + "g"), id="trace-id-non-hex"),
    pytest.param(tp(trace_hex="1234_678901234567890123456789012"), id="trace-id-underscore"),
    pytest.param(tp(trace_hex="\uff11" + TRACE_HEX[1:]), id="trace-id-fullwidth-digit"),
    pytest.param(tp(span_hex=SPAN_HEX + "7"), id="parent-id-too-long"),
    pytest.param(tp(span_hex=SPAN_HEX[:-1]), id="parent-id-too-short"),
    pytest.param(tp(span_hex="+234567890123456"), id="parent-id-plus-sign"),
    pytest.param(tp(span_hex="\u0661" + SPAN_HEX[1:]), id="parent-id-arabic-indic-digit"),
    pytest.param(tp(flags="001"), id="flags-too-long"),
    pytest.param(tp(flags="1"), id="flags-too-short"),
    pytest.param(tp(flags=" 1"), id="flags-inner-space"),
    pytest.param(f"00-{TRACE_HEX}-{SPAN_HEX}", id="flags-missing"),
    pytest.param(VALID_TP.replace("-", "_"), id="underscore-separators"),
    pytest.param(VALID_TP.replace("-", ""), id="no-separators"),
    pytest.param(VALID_TP.replace("-", "--", 1), id="double-dash"),
    # Only SP and HTAB are OWS.
    pytest.param(VALID_TP + "\r\n", id="trailing-crlf"),
    pytest.param("\n" + VALID_TP, id="leading-newline"),
    pytest.param("\u00a0" + VALID_TP, id="leading-nbsp"),
    # One traceparent only: two values, comma-joined or as two header fields, start a new trace.
    pytest.param(VALID_TP + ", " + VALID_TP, id="two-values-comma-joined"),
    pytest.param([VALID_TP, VALID_TP], id="two-identical-header-fields"),
    pytest.param([tp(trace_hex="1" * 32), VALID_TP], id="two-different-header-fields"),
    pytest.param(["", VALID_TP], id="empty-then-valid-header-field"),
    pytest.param([VALID_TP, "garbage"], id="valid-then-garbage-header-field"),
]


@pytest.mark.parametrize("header", INVALID_TRACEPARENTS)
def test_invalid_traceparent_leaves_the_context_unchanged(header: str | list[str]) -> None:
    incoming = Context({create_key("tenant"): "acme"})

    result = PROPAGATOR.extract({TRACEPARENT: header, TRACESTATE: "foo=1"}, incoming)

    assert result is incoming


def test_missing_traceparent_gives_an_empty_context() -> None:
    result = PROPAGATOR.extract({TRACESTATE: "foo=1"})

    assert len(result) == 0
    assert trace.get_current_span(result).get_span_context() == INVALID_SPAN_CONTEXT


def test_extract_keeps_the_other_values_of_the_context() -> None:
    key = create_key("tenant")
    incoming = Context({key: "acme"})

    result = PROPAGATOR.extract({TRACEPARENT: VALID_TP}, incoming)

    assert result.get(key) == "acme"
    assert trace.get_current_span(result).get_span_context().trace_id == TRACE_ID
    assert trace.get_current_span(incoming).get_span_context() == INVALID_SPAN_CONTEXT


# -- tracestate --------------------------------------------------------------------------------

VALUE_256 = "v" * 256
# Every character the value grammar allows (0x20-0x7E without "," and "="), ending in "~".
ALL_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
KEY_256 = "z" * 256
# Starts with a digit and ends with "@": valid in Level 2 only.
KEY_ALL_CHARS = "0" + string.ascii_lowercase + string.digits + "_-*/@"
AT_KEY_256 = "0" + "@" * 255
# Level 2 keys that the Level 1 grammar (and so the stock TraceState) rejects.
LEVEL_2_HEADER = "foo@bar@baz=1,1abc=2"
# 256-character keys: tenant over 241 characters, system over 14, nothing but "@".
LONG_LEVEL_2_KEYS = f"{'t' * 254}@v=1,t@{'v' * 254}=2,{AT_KEY_256}=3"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # Members, order, several header fields joined in order.
        pytest.param("foo=1", "foo=1", id="single-member"),
        pytest.param(["bar=2,foo=1"], "bar=2,foo=1", id="order-kept"),
        pytest.param(["foo=1,bar=2", "rojo=1", "baz=3"], "foo=1,bar=2,rojo=1,baz=3", id="fields"),
        pytest.param(["foo=1", "BAR=2"], "", id="malformed-in-second-field-empties-all"),
        # Empty members and header fields.
        pytest.param(None, "", id="absent"),
        pytest.param([""], "", id="empty-field"),
        pytest.param([" \t "], "", id="ows-only-field"),
        pytest.param(["", "foo=1", ""], "foo=1", id="empty-fields-around"),
        pytest.param([",,foo=1,, ,\t,bar=2,"], "foo=1,bar=2", id="empty-members"),
        pytest.param(["foo=1 \t , \t bar=2"], "foo=1,bar=2", id="ows-around-commas"),
        pytest.param(["\t foo=1 \t"], "foo=1", id="ows-both-sides"),
        # Values.
        pytest.param(["foo= 1"], "foo= 1", id="value-leading-space-kept"),
        pytest.param(["foo=a b c"], "foo=a b c", id="value-inner-spaces"),
        pytest.param(["foo=1 "], "foo=1", id="value-trailing-space-is-ows"),
        pytest.param([f"foo={VALUE_256}"], f"foo={VALUE_256}", id="value-256-chars"),
        pytest.param([f"foo=1,bar={VALUE_256}v"], "", id="value-257-chars"),
        pytest.param([f"foo={ALL_VALUE_CHARS}"], f"foo={ALL_VALUE_CHARS}", id="value-all-chars"),
        pytest.param(["foo="], "", id="value-empty"),
        pytest.param(["foo=   ,bar=2"], "", id="value-only-spaces"),
        pytest.param(["foo=bar=baz"], "", id="value-with-equals"),
        pytest.param(["foo=a\tb"], "", id="value-with-tab"),
        pytest.param(["foo=1\x7f"], "", id="value-with-del"),
        pytest.param(["foo=1\r\n"], "", id="crlf-is-not-ows"),
        pytest.param(["foo=caf\u00e9"], "", id="value-non-ascii"),
        # Keys.
        pytest.param([f"{KEY_256}=1"], f"{KEY_256}=1", id="key-256-chars"),
        pytest.param(["foo=1", f"{KEY_256}z=1"], "", id="key-257-chars"),
        pytest.param(["a=1"], "a=1", id="key-one-char"),
        pytest.param(["=1"], "", id="key-empty"),
        pytest.param(["fOo=1"], "", id="key-uppercase"),
        pytest.param(["foo.bar=1"], "", id="key-with-dot"),
        pytest.param(["foo =1"], "", id="key-trailing-space"),
        pytest.param(["_foo=1"], "", id="key-starts-with-underscore"),
        pytest.param(["-foo=1"], "", id="key-starts-with-dash"),
        pytest.param(["f\u00f6o=1"], "", id="key-non-ascii"),
        pytest.param(["foo"], "", id="member-without-equals"),
        # Level 2 keys: a leading digit, "@" anywhere after the first character.
        pytest.param([LEVEL_2_HEADER], LEVEL_2_HEADER, id="level-2-keys"),
        pytest.param(["1=1,0123=2"], "1=1,0123=2", id="digit-keys"),
        pytest.param([f"{KEY_ALL_CHARS}=1"], f"{KEY_ALL_CHARS}=1", id="key-all-chars"),
        pytest.param(["tenant@vendor=1"], "tenant@vendor=1", id="multi-tenant-key"),
        pytest.param(["foo@=1,bar=2"], "foo@=1,bar=2", id="key-ends-with-at"),
        pytest.param(["foo@@bar=1,foo@1bar=2"], "foo@@bar=1,foo@1bar=2", id="double-at-digit"),
        pytest.param([LONG_LEVEL_2_KEYS], LONG_LEVEL_2_KEYS, id="level-2-keys-256-chars"),
        pytest.param(["foo=1", f"{AT_KEY_256}@=1"], "", id="level-2-key-257-chars"),
        pytest.param(["@foo=1,bar=2"], "", id="key-starts-with-at"),
        pytest.param(["@=1"], "", id="key-only-at"),
        pytest.param(["foo@Bar=1"], "", id="uppercase-after-at"),
        # At most 32 members; empty members do not count, duplicates do.
        pytest.param([members(32)], members(32), id="32-members"),
        pytest.param([members(33)], "", id="33-members"),
        pytest.param([members(16), members(16, 17)], members(32), id="32-members-in-2-fields"),
        pytest.param([members(16), members(17, 17)], "", id="33-members-in-2-fields"),
        pytest.param([",, ," + members(32).replace(",", ", ,\t,")], members(32), id="32-and-empty"),
        pytest.param([members(32) + ",bar01=99"], "", id="33-members-with-a-duplicate"),
        # Duplicate keys: the first (left-most, most recent) value is kept.
        pytest.param(["foo=1,foo=2"], "foo=1", id="duplicate-keeps-first"),
        pytest.param(["foo=1", "foo=2"], "foo=1", id="duplicate-across-fields"),
        pytest.param(["foo=1,bar=2,foo=3,baz=4"], "foo=1,bar=2,baz=4", id="duplicate-in-order"),
        pytest.param([LEVEL_2_HEADER + ",foo@bar@baz=3"], LEVEL_2_HEADER, id="level-2-duplicate"),
        pytest.param(["foo=1,foo=2,FOO=3"], "", id="duplicate-then-malformed"),
        # Very long input.
        pytest.param(["," * 100_000], "", id="many-commas"),
        pytest.param([" ,\t" * 100_000 + "foo=1"], "foo=1", id="long-ows-then-member"),
        pytest.param(["foo=" + "b" * 100_000], "", id="long-value"),
    ],
)
def test_tracestate(headers: str | list[str] | None, expected: str) -> None:
    carrier: dict[str, Any] = {TRACEPARENT: VALID_TP}
    if headers is not None:
        carrier[TRACESTATE] = headers

    span_context = extracted(carrier)

    # A malformed tracestate empties the state but never loses the traceparent.
    assert (span_context.trace_id, span_context.span_id) == (TRACE_ID, SPAN_ID)
    assert span_context.trace_flags == 1
    assert list(span_context.trace_state.items()) == pairs(expected)
    assert span_context.trace_state.to_header() == expected


def test_level_2_tracestate_is_extracted_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        state = extracted({TRACEPARENT: VALID_TP, TRACESTATE: LEVEL_2_HEADER}).trace_state

    assert state.to_header() == LEVEL_2_HEADER
    assert caplog.records == []


# -- inject and round trips --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_context", "expected"),
    [
        pytest.param(remote(), {TRACEPARENT: VALID_TP}, id="sampled"),
        pytest.param(remote(flags=0), {TRACEPARENT: tp(flags="00")}, id="not-sampled"),
        pytest.param(remote(flags=3), {TRACEPARENT: tp(flags="03")}, id="sampled-and-random"),
        pytest.param(
            remote(trace_id=1, span_id=1),
            {TRACEPARENT: "00-00000000000000000000000000000001-0000000000000001-01"},
            id="zero-padded-ids",
        ),
        pytest.param(
            remote(state=TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")])),
            {TRACEPARENT: VALID_TP, TRACESTATE: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
            id="stock-trace-state",
        ),
        pytest.param(
            remote(state=Level2TraceState(pairs(LEVEL_2_HEADER))),
            {TRACEPARENT: VALID_TP, TRACESTATE: LEVEL_2_HEADER},
            id="level-2-trace-state",
        ),
        pytest.param(remote(state=Level2TraceState()), {TRACEPARENT: VALID_TP}, id="empty-state"),
        pytest.param(INVALID_SPAN_CONTEXT, {}, id="invalid-span-context"),
    ],
)
def test_inject(span_context: SpanContext, expected: dict[str, str]) -> None:
    assert injected(span_context) == expected


@pytest.mark.parametrize(
    ("incoming", "outgoing"),
    [
        pytest.param(VALID_TP, VALID_TP, id="plain"),
        pytest.param(tp(flags="03"), tp(flags="03"), id="random"),
        pytest.param(" \t" + VALID_TP + "\t", VALID_TP, id="ows-dropped"),
        pytest.param(tp(version="cc", flags="f1") + "-future", VALID_TP, id="future-version-as-00"),
        pytest.param(tp(version="ff"), None, id="invalid"),
    ],
)
@pytest.mark.parametrize(
    ("tracestate", "forwarded"),
    [
        pytest.param(None, None, id="no-tracestate"),
        pytest.param(members(32), members(32), id="32-members"),
        pytest.param([" foo=1 ,, bar= 2 ", "", "\tbaz=3,foo=4"], "foo=1,bar= 2,baz=3", id="ows"),
        pytest.param("a=b,C=d", None, id="malformed-tracestate"),
        pytest.param(
            [f"{LEVEL_2_HEADER}, foo@=3", f"{LONG_LEVEL_2_KEYS},1abc=5"],
            f"{LEVEL_2_HEADER},foo@=3,{LONG_LEVEL_2_KEYS}",
            id="level-2-keys",
        ),
    ],
)
def test_extract_then_inject(
    incoming: str, outgoing: str | None, tracestate: str | list[str] | None, forwarded: str | None
) -> None:
    carrier: dict[str, Any] = {TRACEPARENT: incoming}
    if tracestate is not None:
        carrier[TRACESTATE] = tracestate
    expected = {TRACEPARENT: outgoing} if outgoing else {}
    if outgoing and forwarded:
        expected[TRACESTATE] = forwarded
    sent: dict[str, str] = {}

    PROPAGATOR.inject(sent, PROPAGATOR.extract(carrier))

    assert sent == expected


def test_fields() -> None:
    assert PROPAGATOR.fields == {TRACEPARENT, TRACESTATE}


# -- the extracted trace state in samplers, vendor code and the SDK ----------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(("add", "new", "v"), "new=v,rojo=1,congo=2", id="add"),
        pytest.param(("add", "rojo", "v"), "rojo=1,congo=2", id="add-existing-ignored"),
        pytest.param(("add", "@x", "v"), "rojo=1,congo=2", id="add-invalid-ignored"),
        pytest.param(("update", "congo", "3"), "congo=3,rojo=1", id="update-moves-first"),
        pytest.param(("update", "new", "v"), "new=v,rojo=1,congo=2", id="update-upserts"),
        pytest.param(("delete", "rojo"), "congo=2", id="delete"),
        pytest.param(("delete", "x"), "rojo=1,congo=2", id="delete-missing"),
    ],
)
def test_mutating_the_extracted_trace_state_gives_a_working_trace_state(
    call: tuple[str, ...], expected: str
) -> None:
    state = extracted({TRACEPARENT: VALID_TP, TRACESTATE: "rojo=1,congo=2"}).trace_state
    assert isinstance(state, Level2TraceState)
    method, *args = call

    mutated = getattr(state, method)(*args)

    assert isinstance(mutated, TraceState)
    assert list(mutated.items()) == pairs(expected)
    assert injected(remote(state=mutated)) == {TRACEPARENT: VALID_TP, TRACESTATE: expected}
    assert state.to_header() == "rojo=1,congo=2"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(("add", "new", "v"), "new=v," + LEVEL_2_HEADER, id="add"),
        pytest.param(("update", "1abc", "v"), "1abc=v,foo@bar@baz=1", id="update"),
        pytest.param(("delete", "1abc"), "foo@bar@baz=1", id="delete"),
    ],
)
def test_mutating_the_extracted_trace_state_keeps_level_2_members(
    call: tuple[str, ...], expected: str
) -> None:
    state = extracted({TRACEPARENT: VALID_TP, TRACESTATE: LEVEL_2_HEADER}).trace_state
    method, *args = call

    assert getattr(state, method)(*args).to_header() == expected


class UpdatingSampler(Sampler):
    """Samples everything and puts its own member first, as a vendor's sampler may."""

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
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE, None, parent.trace_state.update("ours", "x")
        )

    def get_description(self) -> str:
        return "UpdatingSampler"


@pytest.fixture
def make_tracer() -> Iterator[Callable[[Sampler], trace.Tracer]]:
    providers: list[TracerProvider] = []

    def make(sampler: Sampler) -> trace.Tracer:
        providers.append(TracerProvider(sampler=sampler, shutdown_on_exit=False))
        return providers[-1].get_tracer(__name__)

    yield make
    for provider in providers:
        provider.shutdown()


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
def test_sdk_spans_forward_level_2_members_unchanged(
    sampler: Sampler, flags: str, make_tracer: Callable[[Sampler], trace.Tracer]
) -> None:
    # A service receives Level 2 keys, handles the request in nested SDK spans and calls
    # downstream: the SDK hands the parent's trace state to each child, so it reaches inject.
    tracer = make_tracer(sampler)
    header = f"{LEVEL_2_HEADER},{LONG_LEVEL_2_KEYS}"
    outgoing: dict[str, str] = {}

    with (
        tracer.start_as_current_span(
            "handle", context=PROPAGATOR.extract({TRACEPARENT: tp(flags=flags), TRACESTATE: header})
        ),
        tracer.start_as_current_span("call-downstream") as child,
    ):
        PROPAGATOR.inject(outgoing)

    child_context = child.get_span_context()
    assert child_context.trace_id == TRACE_ID
    assert child_context.span_id != SPAN_ID
    assert outgoing == {
        TRACEPARENT: f"00-{TRACE_HEX}-{child_context.span_id:016x}-{child_context.trace_flags:02x}",
        TRACESTATE: header,
    }


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        pytest.param("rojo=1,congo=2", "ours=x,rojo=1,congo=2", id="level-1-members"),
        pytest.param(
            "rojo=1," + LEVEL_2_HEADER,
            "ours=x,rojo=1," + LEVEL_2_HEADER,
            id="level-2-members",
        ),
    ],
)
def test_sdk_sampler_updating_the_trace_state_keeps_the_received_members(
    incoming: str, expected: str, make_tracer: Callable[[Sampler], trace.Tracer]
) -> None:
    tracer = make_tracer(UpdatingSampler())
    outgoing: dict[str, str] = {}

    with tracer.start_as_current_span(
        "handle", context=PROPAGATOR.extract({TRACEPARENT: VALID_TP, TRACESTATE: incoming})
    ):
        PROPAGATOR.inject(outgoing)

    assert outgoing[TRACESTATE] == expected


# -- OTEL_PROPAGATORS --------------------------------------------------------------------------


def propagator_from_env(env: dict[str, str] | None) -> textmap.TextMapPropagator:
    """The propagator a service gets for ``env`` (``None``: this process's environment)."""
    return propagator_for(resolve(OpenTelemetryConfig(service_name="svc"), env).propagators)


def sent_headers(env: dict[str, str] | None) -> set[str]:
    """The header names the propagators for ``env`` write for a sampled span with baggage."""
    context = baggage.set_baggage(
        "tenant", "acme", trace.set_span_in_context(NonRecordingSpan(remote()))
    )
    carrier: dict[str, str] = {}
    propagator_from_env(env).inject(carrier, context)
    return set(carrier)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, {TRACEPARENT, "baggage"}, id="default"),
        pytest.param("tracecontext,baggage", {TRACEPARENT, "baggage"}, id="both"),
        pytest.param(" TraceContext , BAGGAGE ", {TRACEPARENT, "baggage"}, id="spaces-and-case"),
        pytest.param("tracecontext", {TRACEPARENT}, id="tracecontext-only"),
        pytest.param("baggage", {"baggage"}, id="baggage-only"),
        pytest.param("none", set(), id="none"),
    ],
)
def test_otel_propagators(value: str | None, expected: set[str]) -> None:
    assert sent_headers({} if value is None else {"OTEL_PROPAGATORS": value}) == expected


def test_otel_propagators_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext")

    assert sent_headers(None) == {TRACEPARENT}


def test_tracecontext_is_the_level_2_propagator() -> None:
    carrier = {TRACEPARENT: VALID_TP, TRACESTATE: LEVEL_2_HEADER}

    context = propagator_from_env({"OTEL_PROPAGATORS": "tracecontext"}).extract(carrier)

    assert trace.get_current_span(context).get_span_context().trace_state.to_header() == (
        LEVEL_2_HEADER
    )


def test_unknown_propagator_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="no propagator named 'b4'"):
        propagator_from_env({"OTEL_PROPAGATORS": "tracecontext,b4"})


def test_other_names_come_from_opentelemetry_propagator_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed distribution that registers the stock baggage propagator under another name,
    # as a vendor package registers its own propagator.
    env = {"OTEL_PROPAGATORS": "tracecontext,vendor-baggage"}
    with pytest.raises(ValueError, match="vendor-baggage"):
        propagator_from_env(env)
    dist_info = tmp_path / "vendor_propagator-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vendor-propagator\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[opentelemetry_propagator]\n"
        "vendor-baggage = opentelemetry.baggage.propagation:W3CBaggagePropagator\n"
    )
    monkeypatch.syspath_prepend(tmp_path)

    assert sent_headers(env) == {TRACEPARENT, "baggage"}
