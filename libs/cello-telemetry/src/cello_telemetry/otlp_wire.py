"""OTLP/protobuf encoding of span records, written straight to the wire format.

The exporter process spent most of its time in the SDK's encoder, which builds a
Python protobuf object per span, attribute and value before serialising them. This
module writes the same ``ExportTraceServiceRequest`` bytes directly from the compact
records of :mod:`cello_telemetry.export_process`. ``tests/unit/test_otlp_wire.py``
checks the result against the SDK's own encoding, field for field.

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``. Defaults are omitted as proto3 does, except inside
``AnyValue``, whose ``oneof`` members are always written.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")

# Span.flags: "has is_remote" (0x100), and "is remote" (0x200) for a remote parent,
# as the SDK's encoder sets them.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
# SpanKind in the API (INTERNAL=0 .. CONSUMER=4) is SPAN_KIND_INTERNAL=1 .. 5 in OTLP.
_KIND_OFFSET = 1


_SMALL = [bytes((n,)) for n in range(128)]  # one-byte varints: most lengths and tags


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    value &= 0xFFFF_FFFF_FFFF_FFFF  # negative int64 values are ten-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTH_DELIMITED = [_varint(tag << 3 | 2) for tag in range(16)]


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes and messages."""
    size = len(payload)
    return _LENGTH_DELIMITED[tag] + (_SMALL[size] if size < 128 else _varint(size)) + payload


# Attribute keys repeat on every span; their encoded form is kept (a bounded cache).
_KEYS: dict[str, bytes] = {}


def _key(key: str) -> bytes:
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _field(1, key.encode())
        if len(_KEYS) < 4096:
            _KEYS[key] = encoded
    return encoded


def _any_value(value: Any) -> bytes:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(6, _attributes(value, tag=1))
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be encoded")


def _attributes(attributes: Mapping[str, Any], tag: int) -> bytes:
    """``repeated KeyValue`` at field ``tag``."""
    return b"".join(
        _field(tag, _key(key) + _field(2, _any_value(value))) for key, value in attributes.items()
    )


def _span(record: tuple[Any, ...]) -> bytes:
    (_scope_name, _scope_version, _scope_url, name, trace_id, span_id, _flags, state,
     parent_id, parent_remote, kind, start, end, attributes, status_code,
     status_description, events) = record  # fmt: skip
    out = [_field(1, trace_id.to_bytes(16, "big")), _field(2, span_id.to_bytes(8, "big"))]
    if state:
        out.append(_field(3, ",".join(f"{k}={v}" for k, v in state).encode()))
    if parent_id is not None:
        out.append(_field(4, parent_id.to_bytes(8, "big")))
    if name:
        out.append(_field(5, name.encode()))
    out.append(b"\x30" + _varint(kind + _KIND_OFFSET))
    if start:
        out.append(b"\x39" + _FIXED64.pack(start))
    if end:
        out.append(b"\x41" + _FIXED64.pack(end))
    out.append(_attributes(attributes, tag=9))
    for event_name, timestamp, event_attributes in events:
        event = b"\x09" + _FIXED64.pack(timestamp) if timestamp else b""
        if event_name:
            event += _field(2, event_name.encode())
        out.append(_field(11, event + _attributes(event_attributes, tag=3)))
    status = b""
    if status_description:
        status += _field(2, status_description.encode())
    if status_code:
        status += b"\x18" + _varint(status_code)
    out.append(_field(15, status))
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent_remote else 0)
    out.append(b"\x85\x01" + _FIXED32.pack(flags))  # field 16, wire type 5 (fixed32)
    return b"".join(out)


def encode_request(records: Sequence[tuple[Any, ...]], resource: Mapping[str, Any]) -> bytes:
    """A serialised ``ExportTraceServiceRequest`` for ``records`` of one resource.

    Spans are grouped by instrumentation scope in order of first appearance, as the
    SDK's encoder groups them.
    """
    scopes: dict[tuple[str, str | None, str | None], list[bytes]] = {}
    for record in records:
        scopes.setdefault((record[0], record[1], record[2]), []).append(_span(record))
    scope_spans = b""
    for (scope_name, version, schema_url), spans in scopes.items():
        scope = _field(1, scope_name.encode()) if scope_name else b""
        if version:
            scope += _field(2, version.encode())
        body = _field(1, scope) + b"".join(_field(2, span) for span in spans)
        if schema_url:
            body += _field(3, schema_url.encode())
        scope_spans += _field(2, body)
    resource_spans = _field(1, _attributes(resource, tag=1)) + scope_spans
    return _field(1, resource_spans)
