"""W3C Trace Context propagation (``traceparent`` / ``tracestate``) for the Cello services.

The services use :class:`W3CTraceContextPropagator` instead of OpenTelemetry's stock
``TraceContextTextMapPropagator`` because we want a precisely specified receive path:

* ``traceparent`` is parsed following W3C Trace Context Level 2: strict lowercase hex, version
  ``ff`` rejected, future versions accepted by their first 55 characters, several
  ``traceparent`` fields rejected, and the sampled and random-trace-id flags kept while the
  reserved flag bits are cleared.
* ``tracestate`` is validated member by member with the Level 2 key grammar (a lowercase letter
  or digit, then up to 255 of ``a-z 0-9 _ - * / @``), a 32-member limit, and the project rule
  for duplicate keys: the first occurrence wins. Any malformed member discards the whole
  ``tracestate`` but never the ``traceparent``. Valid members are kept verbatim and in order,
  including keys OpenTelemetry's own (Level 1) ``TraceState`` validation would reject, so they
  are forwarded on outgoing calls.

Invalid input never raises: the incoming context is returned unchanged and the server starts a
new trace. Outgoing headers always use version ``00``, the highest version this module knows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators import textmap
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

__all__ = [
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "W3CTraceContextPropagator",
    "format_traceparent",
    "parse_traceparent",
    "parse_tracestate",
    "remote_parent",
]

TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"

# W3C Trace Context Level 2, "Versioning of traceparent": we emit the highest version we know.
_OUTGOING_VERSION: Final = "00"
# "version": version 255 is forbidden.
_FORBIDDEN_VERSION: Final = "ff"
# version "00" = 2 + 1 + 32 + 1 + 16 + 1 + 2 characters; a higher version starts with the same
# 55 characters ("Versioning of traceparent").
_TRACEPARENT_V00_LENGTH: Final = 55
# A literal character class instead of int()'s own parsing: int(x, 16) would also accept
# upper-case hex, "_", a sign and non-ASCII digits, all of which HEXDIGLC forbids
# ("traceparent Header Field Values").
_TRACEPARENT_PREFIX_RE: Final = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})"
)
# "trace-flags": only "Sampled flag" (0x01) and "Random Trace ID Flag" (0x02) are defined; the
# random flag MUST be passed on with the same trace-id, and "Other Flags" MUST be set to zero.
_KNOWN_FLAGS: Final = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID

# OWS is SP / HTAB (RFC 9110, §5.6.3 "Whitespace"); "tracestate Header Field Values" ignores it
# around list-members. Nothing else (CR, LF, NBSP...) may be stripped.
_OWS: Final = " \t"
# "tracestate Header Field Values": at most 32 list-members.
_MAX_TRACESTATE_MEMBERS: Final = 32

# "Key" (W3C Trace Context Level 2, spec/20-http_request_header_format.md):
#   key     = ( lcalpha / DIGIT ) 0*255 ( keychar )
#   keychar = lcalpha / DIGIT / "_" / "-"/ "*" / "/" / "@"
#   lcalpha = %x61-7A ; a-z
# so 1..256 characters, starting with a lowercase letter or a digit, with "@" allowed anywhere
# after the first character ("foo@", "foo@@bar", "foo@bar@baz" are all keys). This replaces
# Level 1's simple-key / tenant-id "@" system-id grammar with its 241/14-character limits.
_KEY: Final = r"[a-z0-9][a-z0-9_\-*/@]{0,255}"
# "Value": value = 0*255(chr) nblk-chr, so 1..256 printable ASCII characters without "," or "="
# that do not end in a space. Everything outside these classes (controls, DEL, non-ASCII) fails.
_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
# One precompiled pattern for a whole member: one fullmatch per member, no extra splitting.
_MEMBER_RE: Final = re.compile(rf"({_KEY})=({_VALUE})")
# The same grammar for a key and a value given separately (TraceState.add / update).
_KEY_RE: Final = re.compile(_KEY)
_VALUE_RE: Final = re.compile(_VALUE)

_logger = logging.getLogger(__name__)


class _Level2TraceState(TraceState):
    """A :class:`TraceState` whose pairs were validated with the Level 2 grammar above.

    OpenTelemetry's ``TraceState`` constructor (opentelemetry-api 1.x, ``trace/span.py``)
    re-validates every pair with the Level 1 key pattern, silently drops e.g. ``1foo`` or
    ``foo@bar@baz`` and logs a warning for each. Its ``add``/``update``/``delete`` rebuild the
    result through that same constructor. So this subclass:

    * stores the pairs it is given as they are, in the base class's ``_dict`` (a private
      attribute every inherited method reads; tests/unit/test_propagation.py would catch a
      change): callers (only this module) pass pairs that already matched ``_MEMBER_RE``, at
      most 32 and without duplicate keys;
    * re-implements ``add``/``update``/``delete`` with the Level 2 check, so a sampler or vendor
      mutating the trace state keeps the Level 2 members and gets a ``_Level2TraceState`` back;
    * parses ``from_header`` with :func:`parse_tracestate`.

    Everything else (mapping access, ``to_header``, equality with a plain ``TraceState``) is
    inherited. The SDK passes the parent's trace state object itself to child spans
    (``_get_parent_trace_state`` in ``opentelemetry/sdk/trace/sampling.py``), so the members
    reach :meth:`W3CTraceContextPropagator.inject` unchanged.
    """

    def __init__(self, entries: Sequence[tuple[str, str]] | None = None) -> None:
        # No entries: the base constructor only creates its empty ``_dict`` and validates nothing.
        super().__init__()
        if entries:
            self._dict.update(entries)

    def add(self, key: str, value: str) -> TraceState:
        """Return a copy with ``key=value`` added first; ``self`` if invalid, present or full."""
        if not _is_valid_member(key, value) or key in self or len(self) >= _MAX_TRACESTATE_MEMBERS:
            _logger.warning("tracestate member (%s, %s) not added", key, value)
            return self
        return _Level2TraceState([(key, value), *self.items()])

    def update(self, key: str, value: str) -> TraceState:
        """Return a copy with ``key=value`` moved or added first; ``self`` if invalid or full.

        Like ``TraceState.update`` this is an upsert: a new key is added while there is room.
        """
        if not _is_valid_member(key, value) or (
            key not in self and len(self) >= _MAX_TRACESTATE_MEMBERS
        ):
            _logger.warning("tracestate member (%s, %s) not updated", key, value)
            return self
        return _Level2TraceState([(key, value), *((k, v) for k, v in self.items() if k != key)])

    def delete(self, key: str) -> TraceState:
        """Return a copy without ``key``; ``self`` if it is not present."""
        if key not in self:
            _logger.warning("tracestate key %s not present", key)
            return self
        return _Level2TraceState([(k, v) for k, v in self.items() if k != key])

    @classmethod
    def from_header(cls, header_list: list[str]) -> TraceState:
        """Parse ``tracestate`` field values with :func:`parse_tracestate`."""
        return parse_tracestate(header_list)


def _is_valid_member(key: object, value: object) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, str)
        and _KEY_RE.fullmatch(key) is not None
        and _VALUE_RE.fullmatch(value) is not None
    )


_EMPTY_TRACESTATE: Final = _Level2TraceState()


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """Parse one ``traceparent`` field value.

    Args:
        value: the field value; surrounding spaces and tabs are ignored.

    Returns:
        ``(trace_id, span_id, flags)`` with ``flags`` reduced to the sampled (``0x01``) and
        random-trace-id (``0x02``) bits, or ``None`` if the value is not a valid
        ``traceparent``. Never raises for string input.
    """
    header = value.strip(_OWS)
    match = _TRACEPARENT_PREFIX_RE.match(header)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex = match.groups()
    if version == _FORBIDDEN_VERSION:
        return None
    if version == _OUTGOING_VERSION:
        # "version-format": version 00 has exactly four fields, so anything after them is invalid.
        if len(header) != _TRACEPARENT_V00_LENGTH:
            return None
    # "Versioning of traceparent": a higher version may append fields, but the flags must be
    # followed by the end of the string or a dash; we must not interpret what comes after it.
    elif len(header) != _TRACEPARENT_V00_LENGTH and header[_TRACEPARENT_V00_LENGTH] != "-":
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    # "trace-id" / "parent-id": all zeroes is invalid and the whole header must be ignored.
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(flags_hex, 16) & _KNOWN_FLAGS


def parse_tracestate(headers: Iterable[str] | None) -> TraceState:
    """Parse the ``tracestate`` field values of one request.

    Args:
        headers: every ``tracestate`` field value received, in order; several values are
            treated as one list joined by commas. ``None`` means the header is absent.

    Returns:
        The members in received order. Empty members are skipped and, for a repeated key, the
        first occurrence is kept. If there are more than 32 members or any member is malformed,
        the result is an empty :class:`TraceState`. Keys follow the Level 2 grammar, also where
        it is wider than OpenTelemetry's own ``TraceState`` check (see :class:`_Level2TraceState`).
        Never raises.
    """
    if headers is None:
        return _EMPTY_TRACESTATE
    if isinstance(headers, str):
        # A getter that returns a bare string instead of a list still means one field value.
        headers = (headers,)
    pairs: dict[str, str] = {}
    members = 0
    for header in headers:
        if not isinstance(header, str):
            return _EMPTY_TRACESTATE
        # "tracestate Header Field Values": multiple fields are combined as by RFC 9110 §5.3
        # ("Field Order"), i.e. joined with commas; splitting each one gives the same members
        # without building the joined string.
        for raw_member in header.split(","):
            member = raw_member.strip(_OWS)
            # Empty and whitespace-only list-members are allowed and carry nothing.
            if not member:
                continue
            members += 1
            if members > _MAX_TRACESTATE_MEMBERS:
                return _EMPTY_TRACESTATE
            match = _MEMBER_RE.fullmatch(member)
            if match is None:
                return _EMPTY_TRACESTATE
            key, member_value = match.groups()
            # "Mutating the tracestate Field" lets a vendor discard duplicate keys; keeping the
            # first (left-most, most recently written) one is the project's rule.
            pairs.setdefault(key, member_value)
    if not pairs:
        return _EMPTY_TRACESTATE
    return _Level2TraceState(list(pairs.items()))


def format_traceparent(span_context: SpanContext) -> str:
    """Format ``span_context`` as a version ``00`` ``traceparent`` value.

    Only the sampled and random-trace-id flags are written; the reserved bits are cleared.

    Raises:
        ValueError: if ``span_context`` is not valid (zero or out-of-range ids), since no
            valid ``traceparent`` exists for it.
    """
    if not span_context.is_valid:
        raise ValueError(f"no traceparent for an invalid span context: {span_context!r}")
    # "Other Flags": vendors MUST set the undefined flag bits to zero.
    flags = span_context.trace_flags & _KNOWN_FLAGS
    return (
        f"{_OUTGOING_VERSION}-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"
    )


def remote_parent(headers: Mapping[str, str]) -> SpanContext | None:
    """The caller's span context from a request's header mapping, or ``None``.

    The server's fast path: the same rules as :meth:`W3CTraceContextPropagator.extract`
    for a mapping that holds one value per (lowercase) header name, without building a
    ``Context``.
    """
    header = headers.get(TRACEPARENT_HEADER)
    if header is None:
        return None
    parsed = parse_traceparent(header)
    if parsed is None:
        return None
    trace_id, span_id, flags = parsed
    state = headers.get(TRACESTATE_HEADER)
    return SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=parse_tracestate((state,)) if state is not None else _EMPTY_TRACESTATE,
    )


def _single_traceparent(values: list[str] | None) -> str | None:
    if not values:
        return None
    if isinstance(values, str):
        # A getter that returns a bare string instead of a list still means one field value.
        return values
    # traceparent is not a list-valued field, so RFC 9110 §5.3 ("Field Order") does not allow
    # it to be repeated; the W3C test suite (test_traceparent_duplicated) expects a restart.
    if len(values) != 1:
        return None
    value = values[0]
    return value if isinstance(value, str) else None


class W3CTraceContextPropagator(textmap.TextMapPropagator):
    """Extracts and injects the W3C ``traceparent`` and ``tracestate`` headers.

    A drop-in replacement for OpenTelemetry's ``TraceContextTextMapPropagator`` with the
    validation rules described in this module's docstring.
    """

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        """Return ``context`` with the remote parent found in ``carrier``, if any.

        If ``traceparent`` is absent, repeated or invalid, ``context`` (the root context when
        ``None``) is returned unchanged and ``tracestate`` is not read. A malformed
        ``tracestate`` only empties the trace state. Never raises on malformed headers.
        """
        if context is None:
            context = Context()
        header = _single_traceparent(getter.get(carrier, TRACEPARENT_HEADER))
        if header is None:
            return context
        parsed = parse_traceparent(header)
        if parsed is None:
            return context
        trace_id, span_id, flags = parsed
        # "Tracestate Header": tracestate is only parsed once traceparent has been parsed.
        trace_state = parse_tracestate(getter.get(carrier, TRACESTATE_HEADER))
        span_context = SpanContext(
            trace_id=trace_id,
            span_id=span_id,
            is_remote=True,
            trace_flags=TraceFlags(flags),
            trace_state=trace_state,
        )
        return trace.set_span_in_context(NonRecordingSpan(span_context), context)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        """Write the span of ``context`` (the current context when ``None``) into ``carrier``.

        Sets ``traceparent``, and ``tracestate`` when the trace state is not empty. Writes
        nothing when the span context is invalid.
        """
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(carrier, TRACEPARENT_HEADER, format_traceparent(span_context))
        if span_context.trace_state:
            # "Combined Header Value": members in order, "key=value" joined by commas.
            setter.set(carrier, TRACESTATE_HEADER, span_context.trace_state.to_header())

    @property
    def fields(self) -> set[str]:
        """The header names :meth:`inject` may set."""
        return {TRACEPARENT_HEADER, TRACESTATE_HEADER}
