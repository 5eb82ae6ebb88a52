"""W3C propagation: the stock propagators, composed from ``OTEL_PROPAGATORS``.

``tracecontext`` is OpenTelemetry's ``TraceContextTextMapPropagator`` with the smallest
change that makes it pass the W3C Trace Context Level 2 test suite (STRICT_LEVEL=2):
:class:`TraceContextPropagator`. ``baggage`` is the stock ``W3CBaggagePropagator``; any
other name is loaded from its ``opentelemetry_propagator`` entry point, as the
OpenTelemetry API does for the global propagator.
"""

from __future__ import annotations

import logging
import re
from collections.abc import ItemsView, Iterator, KeysView, Sequence, ValuesView
from importlib.metadata import entry_points
from typing import Final

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators import textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["Level2TraceState", "TraceContextPropagator", "propagator_for"]

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"

# Level 2 "Key": ( lcalpha / DIGIT ) 0*255( keychar ), keychar = lcalpha / DIGIT / _ - * / @.
# Level 1 (what TraceState checks) forbids a leading digit and more than one "@".
_MEMBER: Final = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_MAX_MEMBERS: Final = 32
# "trace-flags": only sampled (0x01) and random-trace-id (0x02) are defined; vendors MUST
# set the other bits to zero on what they send.
_KNOWN_FLAGS: Final = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID

_logger = logging.getLogger(__name__)


class Level2TraceState(TraceState):
    """A ``TraceState`` that holds members with Level 2 keys (``foo@``, ``1a``, ``a@b@c``).

    The stock class validates keys with the Level 1 grammar in its constructor and drops
    the others, so a Level 2 member a caller sent would not reach the next service. This
    subclass keeps its members in a mapping of its own, and ``add``, ``update`` and
    ``delete`` keep the other vendors' members, as the specification requires.
    """

    def __init__(self, entries: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._members = dict(entries)

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __getitem__(self, key: str) -> str:
        return self._members[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"Level2TraceState({list(self._members.items())!r})"

    def keys(self) -> KeysView[str]:
        return self._members.keys()

    def items(self) -> ItemsView[str, str]:
        return self._members.items()

    def values(self) -> ValuesView[str]:
        return self._members.values()

    def to_header(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self._members.items())

    def add(self, key: str, value: str) -> TraceState:
        """A copy with ``key=value`` first; ``self`` if invalid, present or full."""
        if not _valid(key, value) or key in self._members or len(self) >= _MAX_MEMBERS:
            _logger.warning("tracestate member %s=%s not added", key, value)
            return self
        return Level2TraceState([(key, value), *self._members.items()])

    def update(self, key: str, value: str) -> TraceState:
        """A copy with ``key=value`` moved (or added) first; ``self`` if invalid or full."""
        if not _valid(key, value) or (key not in self._members and len(self) >= _MAX_MEMBERS):
            _logger.warning("tracestate member %s=%s not updated", key, value)
            return self
        others = ((k, v) for k, v in self._members.items() if k != key)
        return Level2TraceState([(key, value), *others])

    def delete(self, key: str) -> TraceState:
        """A copy without ``key``; ``self`` if it is not present."""
        if key not in self._members:
            return self
        return Level2TraceState([(k, v) for k, v in self._members.items() if k != key])

    @classmethod
    def from_header(cls, header_list: list[str]) -> TraceState:
        """Parse ``tracestate`` field values with the Level 2 grammar.

        Empty members are skipped; a repeated key keeps its first (left-most, most
        recent) value; more than 32 members or any malformed member gives an empty state.
        """
        members: dict[str, str] = {}
        count = 0
        for header in header_list:
            for raw in header.split(","):
                member = raw.strip(" \t")
                if not member:
                    continue
                count += 1
                match = _MEMBER.fullmatch(member)
                if match is None or count > _MAX_MEMBERS:
                    return cls()
                members.setdefault(match[1], match[2])
        return cls(list(members.items()))


def _valid(key: object, value: object) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, str)
        and _MEMBER.fullmatch(f"{key}={value}") is not None
    )


class _WithoutTracestate(textmap.Getter[textmap.CarrierT]):
    """Hides ``tracestate`` from the stock parser, which would reject Level 2 keys noisily."""

    def __init__(self, getter: textmap.Getter[textmap.CarrierT]) -> None:
        self._getter = getter

    def get(self, carrier: textmap.CarrierT, key: str) -> list[str] | None:
        return None if key == TRACESTATE else self._getter.get(carrier, key)

    def keys(self, carrier: textmap.CarrierT) -> list[str]:
        return self._getter.keys(carrier)


class TraceContextPropagator(TraceContextTextMapPropagator):
    """The stock W3C Trace Context propagator, with three Level 2 rules it lacks.

    * ``tracestate`` is parsed with the Level 2 key grammar and a repeated key keeps its
      first value (the stock parser drops the whole header in both cases);
    * undefined ``trace-flags`` bits are cleared, so they are not passed on;
    * a repeated ``traceparent`` field starts a new trace (the stock one reads the first).

    Everything else, including ``inject``, is the stock propagator's.
    """

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        values = getter.get(carrier, TRACEPARENT)
        if values is not None and len(values) > 1:
            return context
        extracted = super().extract(carrier, context, _WithoutTracestate(getter))
        parent = trace.get_current_span(extracted).get_span_context()
        if not parent.is_valid:
            return context
        state = getter.get(carrier, TRACESTATE)
        span_context = SpanContext(
            parent.trace_id,
            parent.span_id,
            is_remote=True,
            trace_flags=TraceFlags(parent.trace_flags & _KNOWN_FLAGS),
            trace_state=Level2TraceState.from_header(list(state)) if state else None,
        )
        return trace.set_span_in_context(NonRecordingSpan(span_context), context)


def propagator_for(names: Sequence[str]) -> textmap.TextMapPropagator:
    """The propagators ``names`` (``OTEL_PROPAGATORS``, as resolved) composed into one.

    ``none`` means no propagation. Raises ``ValueError`` for a name no installed
    package provides, so a typo fails at start-up.
    """
    propagators: list[textmap.TextMapPropagator] = []
    for name in names:
        if name == "none":
            continue
        if name == "tracecontext":
            propagators.append(TraceContextPropagator())
        elif name == "baggage":
            propagators.append(W3CBaggagePropagator())
        else:
            found = entry_points(group="opentelemetry_propagator", name=name)
            if not found:
                raise ValueError(f"OTEL_PROPAGATORS: no propagator named {name!r} is installed")
            propagators.append(next(iter(found)).load()())
    return CompositePropagator(propagators)
